package hookbench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/procstat"
	"github.com/darktime/darktime/server/pipeline"
)

// expandHook fills hookBody as the swarm's publisher does.
func expandHook(thread string, seq, ts int64) string {
	return strings.NewReplacer("{channel}", thread, "{seq}", strconv.FormatInt(seq, 10), "{ts}", strconv.FormatInt(ts, 10)).Replace(hookBody)
}

// hookEvent runs one hook of hookBody through the server's default
// pipeline and returns the event published on its thread.
func hookEvent(t *testing.T, hook []byte) pipeline.Event {
	t.Helper()
	h, err := pipeline.ParseHook(hook)
	if err != nil {
		t.Fatalf("ParseHook(%s): %v", hook, err)
	}
	res, err := pipeline.DefaultConfig().Run(context.Background(), h)
	if err != nil || len(res.Events) != 3 {
		t.Fatalf("pipeline on %s: %+v, %v; want 3 events", hook, res, err)
	}
	return res.Events[0]
}

// TestHookBatchThroughPipeline: a batch of the profile's hooks, joined as
// the swarm joins them, is one the server takes, and each hook's event on
// its thread carries the seq and ts where the profile's markers look.
func TestHookBatchThroughPipeline(t *testing.T) {
	t.Parallel()
	p := profile(3)
	if p.Publish.Batch != 3 || p.Publish.BatchBody != "" || p.EventType != "post.saved" {
		t.Fatalf("profile %+v: want batches of 3 as a JSON array, post.saved events", p)
	}
	hooks := []string{expandHook("t_0", 7, 1_700_000_000_123_456_789), expandHook("t_1", 7, 1_700_000_000_123_456_789), expandHook("t_2", 8, 5)}
	items, err := pipeline.ParseHookBatch([]byte("[" + strings.Join(hooks, ",") + "]"))
	if err != nil || len(items) != 3 {
		t.Fatalf("ParseHookBatch: %d items, %v", len(items), err)
	}
	for i, it := range items {
		if it.Err != nil {
			t.Fatalf("hook %d: %v", i, it.Err)
		}
		ev := hookEvent(t, it.Raw)
		if want := fmt.Sprintf("thread:t_%d", i); ev.Channel != want || ev.Event != p.EventType {
			t.Errorf("hook %d: event %q on %q, want %q on %q", i, ev.Event, ev.Channel, p.EventType, want)
		}
		seq, ts := int64(7), int64(1_700_000_000_123_456_789)
		if i == 2 {
			seq, ts = 8, 5
		}
		if want := fmt.Sprintf("%sseq=%d %s%d", `"message":"`, seq, p.Extract.TS, ts); !strings.Contains(string(ev.Data), want) {
			t.Errorf("hook %d: data %s lacks %s", i, ev.Data, want)
		}
	}
}

func FuzzHookEvent(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(math.MaxInt64), int64(1_700_000_000_123_456_789))
	f.Fuzz(func(t *testing.T, seq, ts int64) {
		if seq < 0 || ts < 0 {
			return
		}
		// Whatever the numbers, the event carries them after the markers.
		ev := hookEvent(t, []byte(expandHook("t_0", seq, ts)))
		want := fmt.Sprintf("seq=%d ts=%d", seq, ts)
		if !strings.Contains(string(ev.Data), want) {
			t.Fatalf("data %s lacks %s", ev.Data, want)
		}
	})
}

func TestParseProcessesIsAConfigError(t *testing.T) {
	t.Parallel()
	if _, err := ParseProcesses("server=0"); !errors.Is(err, ErrConfig) || !errors.Is(err, procstat.ErrProcessList) {
		t.Fatalf("ParseProcesses(server=0): %v, want ErrConfig and procstat.ErrProcessList", err)
	}
}
