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
