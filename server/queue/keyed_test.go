package queue

import (
	"errors"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
)

// TestEnqueueKeyed: a key enqueued within the window is not added again
// (its first id comes back, fresh counts only the new); MaxLen counts only
// new jobs; the enqueued counter and the stream agree.
func TestEnqueueKeyed(t *testing.T) {
	t.Parallel()
	q, _ := newTestQueue(t, Config{MaxLen: 3})
	ctx := testCtx(t)
	first, fresh, err := q.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte("a"), Key: "k#0"}, {Payload: []byte("b"), Key: "k#1"}}, 0)
	if err != nil || fresh != 2 || len(first) != 2 {
		t.Fatalf("first enqueue: %v %d %v", first, fresh, err)
	}
	again, fresh, err := q.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte("a"), Key: "k#0"}, {Payload: []byte("b"), Key: "k#1"}}, 0)
	if err != nil || fresh != 0 || again[0] != first[0] || again[1] != first[1] {
		t.Fatalf("repeat: %v %d %v, want %v and nothing new", again, fresh, err, first)
	}
	// Two queued, MaxLen 3: a repeat plus one new fits, two new do not.
	mixed, fresh, err := q.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte("a"), Key: "k#0"}, {Payload: []byte("c"), Key: "c"}}, 0)
	if err != nil || fresh != 1 || mixed[0] != first[0] {
		t.Fatalf("repeat + new: %v %d %v", mixed, fresh, err)
	}
	if _, _, err := q.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte("d"), Key: "d"}}, 0); !errors.Is(err, ErrFull) {
		t.Fatalf("over MaxLen: %v, want ErrFull", err)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Enqueued != 3 || st.Depth != 3 {
		t.Fatalf("stats %+v %v: want 3 enqueued, 3 deep", st, err)
	}
	if _, _, err := q.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte("x")}}, 0); err == nil {
		t.Fatal("a job without a key was taken")
	}
	// The window passes: the key may be enqueued again.
	short, _ := newTestQueue(t, Config{})
	if _, fresh, err := short.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte("a"), Key: "w"}}, time.Millisecond); err != nil || fresh != 1 {
		t.Fatalf("%d %v", fresh, err)
	}
	tstest.WaitFor(t, 5*time.Second, "the key to expire", func() bool {
		_, fresh, err := short.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte("a"), Key: "w"}}, time.Millisecond)
		return err == nil && fresh == 1
	})
}

// TestEnqueueKeyedOutcomeUnknown: with Redis paused the enqueue fails as
// outcome unknown (it may have happened), not as a refusal; a retry with
// the same key after Redis continues adds the job once.
func TestEnqueueKeyedOutcomeUnknown(t *testing.T) {
	tstest.Long(t, "waits out the client timeout on a paused Redis")
	t.Parallel()
	q, rds := newTestQueue(t, Config{})
	ctx := testCtx(t)
	rds.Pause()
	_, _, err := q.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte("a"), Key: "p"}}, 0)
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("with Redis paused: %v, want ErrOutcomeUnknown", err)
	}
	rds.Resume()
	if _, _, err := q.EnqueueKeyed(ctx, []KeyedJob{{Payload: []byte("a"), Key: "p"}}, 0); err != nil {
		t.Fatal(err)
	}
	st, err := q.Stats(ctx)
	if err != nil || st.Enqueued != 1 || st.Depth != 1 {
		t.Fatalf("stats %+v %v: want the job once", st, err)
	}
}
