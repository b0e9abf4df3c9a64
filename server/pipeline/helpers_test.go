package pipeline

import (
	"context"
	"testing"
	"time"
)

// postSave is a typical post_save hook.
const postSave = `{"model":"post","action":"post_save","id":"123","thread":"7","forum":"pycon","author":"42",` +
	`"parent":null,"message":"Hello <world>","created_at":"2013-03-16T10:00:00Z","is_spam":false,"is_approved":true,` +
	`"ip_address":"10.0.0.1","likes":3}`

var received = time.Date(2013, 3, 16, 10, 0, 1, 250e6, time.UTC)

// mustHook parses a hook and sets the fields a worker would.
func mustHook(t testing.TB, data string) Hook {
	t.Helper()
	h, err := ParseHook([]byte(data))
	if err != nil {
		t.Fatalf("ParseHook(%s): %v", data, err)
	}
	h.JobID = "1-0"
	h.Attempt = 1
	h.Received = received
	return h
}

// mustStage is used as mustStage(t)(NewRoute(cfg)).
func mustStage(t testing.TB) func(Stage, error) Stage {
	return func(s Stage, err error) Stage {
		t.Helper()
		if err != nil {
			t.Fatalf("building stage: %v", err)
		}
		return s
	}
}

// runStage runs one stage on a fresh item for h.
func runStage(t testing.TB, s Stage, h Hook) (*Item, error) {
	t.Helper()
	it := NewItem(h)
	return it, s.Process(context.Background(), it)
}

// outcome names what an error means to the worker.
func outcome(err error) string {
	if err == nil {
		return "ok"
	}
	if _, ok := IsDrop(err); ok {
		return "drop"
	}
	if IsReject(err) {
		return "reject"
	}
	return "retry"
}
