package runner

import (
	"testing"

	"github.com/darktime/darktime/internal/redisurl"
)

// TestNodesNameTheirConnections: the --redis URL a node gets names its
// connections after it, on one Redis and on a cluster, so that
// kill_redis_link finds them in CLIENT LIST.
func TestNodesNameTheirConnections(t *testing.T) {
	t.Parallel()
	want := clientName("primary-1")
	for _, raw := range []string{"redis://127.0.0.1:6379/0", "redis+cluster://127.0.0.1:7000,127.0.0.1:7001"} {
		o, err := redisurl.Parse(withClientName(raw, want))
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		var got string
		switch {
		case o.Single != nil:
			got = o.Single.ClientName
		case o.Cluster != nil:
			got = o.Cluster.ClientName
			if len(o.Cluster.Addrs) != 2 {
				t.Errorf("%s: addrs %v", raw, o.Cluster.Addrs)
			}
		}
		if got != want {
			t.Errorf("%s: client name %q, want %q", raw, got, want)
		}
	}
}
