package swarm

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/server"
)

// closedURL is a loopback address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// TestRunUnreachable: a target no client can subscribe to, and one whose
// publishes never get a connection, are ErrUnreachable, with what was
// measured; a run that reached its target is not.
func TestRunUnreachable(t *testing.T) {
	t.Parallel()
	target := startServer(t, server.Config{})
	closed := closedURL(t)
	pubClosed := builtinProfiles["darktime"]
	pubClosed.Publish.URL = closed + "/pub?id={channel}"
	for _, tc := range []struct {
		name    string
		target  string
		profile Profile
		says    string
	}{
		{"no subscriber", closed, Profile{}, "no client could subscribe"},
		{"no publish connects", target, pubClosed, "none of the"},
		{"reached", target, Profile{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := quickConfig(t, tc.target)
			cfg.Clients, cfg.Duration = 8, 500*time.Millisecond
			if tc.profile.Name != "" {
				cfg.Profile = tc.profile
			}
			res, err := Run(context.Background(), cfg)
			if res == nil {
				t.Fatalf("no result: %v", err)
			}
			if tc.says == "" {
				if err != nil {
					t.Fatalf("a run that reached its target: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("err %v, want ErrUnreachable saying %q", err, tc.says)
			}
		})
	}
}

// TestRunTickSeconds: the Tick hook sees every second of the series, in order,
// as the result has them.
func TestRunTickSeconds(t *testing.T) {
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	var (
		mu   sync.Mutex
		seen []Second
	)
	cfg.Tick = func(tk Tick) {
		s := tk.Second
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(res.Series) || len(seen) < 2 {
		t.Fatalf("the hook saw %d seconds, the result has %d", len(seen), len(res.Series))
	}
	var events int64
	for i, s := range seen {
		r := res.Series[i]
		if s.T != r.T || s.Events != r.Events || s.Histograms[HistDelivery] != r.Histograms[HistDelivery] {
			t.Errorf("second %d: hook %d/%d events, result %d/%d", i, s.T, s.Events, r.T, r.Events)
		}
		events += s.Events
	}
	if events != res.Events.Events {
		t.Errorf("the seconds sum to %d events, the result has %d", events, res.Events.Events)
	}
}
