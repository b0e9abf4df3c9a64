package redisurl

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		cluster bool
		addrs   []string
		pass    string
		err     string
	}{
		{raw: "redis://127.0.0.1:6379/0", addrs: []string{"127.0.0.1:6379"}},
		{raw: "redis+cluster://a:7000,b:7001,c:7002", cluster: true, addrs: []string{"a:7000", "b:7001", "c:7002"}},
		{raw: "redis+cluster://u:secret@a:7000,b:7001/?dial_timeout=2s", cluster: true, addrs: []string{"a:7000", "b:7001"}, pass: "secret"},
		{raw: "rediss+cluster://a:7000", cluster: true, addrs: []string{"a:7000"}},
		{raw: "redis+cluster://a:7000/3", err: "no database"},
		{raw: "redis+cluster://", err: "at least one node"},
		{raw: "redis+cluster://a:7000,,b:1", err: "empty node"},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			o, err := Parse(tc.raw)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if IsCluster(tc.raw) != tc.cluster || (o.Cluster != nil) != tc.cluster {
				t.Fatalf("cluster = %v", o.Cluster != nil)
			}
			if tc.cluster {
				if !slices.Equal(o.Cluster.Addrs, tc.addrs) || o.Cluster.Password != tc.pass {
					t.Fatalf("addrs %v pass %q", o.Cluster.Addrs, o.Cluster.Password)
				}
			} else if o.Single.Addr != tc.addrs[0] {
				t.Fatalf("addr %q", o.Single.Addr)
			}
		})
	}
	if got := Redact("redis+cluster://u:secret@a:1,b:2"); strings.Contains(got, "secret") {
		t.Fatalf("Redact = %q", got)
	}
}
