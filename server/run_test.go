package server

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRunRefusesBadInput(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	quiet := Config{Logger: slog.New(slog.DiscardHandler)}
	for _, c := range []struct {
		name string
		cfg  Config
		l    Listen
		says string
	}{
		{"cert without key", quiet, Listen{Addr: "127.0.0.1:0", TLSCert: "c.pem"}, "--tls-cert and --tls-key go together"},
		{"negative shutdown", quiet, Listen{Addr: "127.0.0.1:0", ShutdownTimeout: -time.Second}, "--shutdown-timeout -1s is negative"},
		{"workers without redis", Config{Workers: 2, Logger: quiet.Logger}, Listen{Addr: "127.0.0.1:0"}, "--workers needs --redis"},
		{"a bad config", Config{MaxBodyBytes: -1, Logger: quiet.Logger}, Listen{Addr: "127.0.0.1:0"}, "--max-body"},
		{"missing TLS files", quiet, Listen{Addr: "127.0.0.1:0", TLSCert: "/nonexistent.pem", TLSKey: "/nonexistent.pem"}, "--tls-cert /nonexistent.pem / --tls-key"},
		{"address in use", quiet, Listen{Addr: busy.Addr().String()}, "listen on " + busy.Addr().String()},
		{"admin address in use", quiet, Listen{Addr: "127.0.0.1:0", Admin: busy.Addr().String()}, "--admin-listen " + busy.Addr().String()},
	} {
		err := Run(context.Background(), c.cfg, c.l)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want ErrConfig saying %q", c.name, err, c.says)
		}
	}
}

// TestRunServesUntilCancelled: Run listens, serves, and on cancellation
// shuts down and returns nil, logging the final counters.
func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var banner bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))},
			Listen{Addr: "127.0.0.1:0", Admin: "127.0.0.1:0", Demo: true, Banner: &banner, ShutdownTimeout: 5 * time.Second})
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancellation")
	}
	for _, want := range []string{"darktime server listening", "admin listening", "stopped"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
	if !strings.Contains(banner.String(), "demo page:") {
		t.Errorf("banner: %q", banner.String())
	}
}
