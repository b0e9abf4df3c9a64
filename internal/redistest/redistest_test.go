package redistest

import (
	"context"
	"testing"
)

func TestRestartKeepsAOFData(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		aof  bool
		want int64
	}{
		{"no persistence loses data", false, 0},
		{"aof keeps data", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Start(t, Options{AppendOnly: tc.aof})
			c := s.Client()
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			s.Restart()
			n, err := c.Exists(ctx, "k").Result()
			if err != nil {
				t.Fatalf("EXISTS after restart: %v", err)
			}
			if n != tc.want {
				t.Fatalf("EXISTS k after restart = %d, want %d", n, tc.want)
			}
		})
	}
}

func TestStartCluster(t *testing.T) {
	ctx := context.Background()
	c := StartCluster(t, 3, 1)
	if len(c.Nodes) != 6 {
		t.Fatalf("%d nodes", len(c.Nodes))
	}
	cc := c.Client()
	for i := range 50 {
		key := "k" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if err := cc.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
	}
	// The slot of a hash tag is the slot of the tag (CLUSTER KEYSLOT agrees).
	for _, key := range []string{"a", "{a}:h", "darktime:{chan}:p", "x{}y"} {
		got, err := cc.ClusterKeySlot(ctx, key).Result()
		if err != nil || int(got) != Slot(key) {
			t.Fatalf("slot of %q: redis %d (%v), Slot %d", key, got, err, Slot(key))
		}
	}
}
