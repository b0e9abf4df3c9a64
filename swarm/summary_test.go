package swarm

import (
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/ledger"
)

func TestSwarmSummary(t *testing.T) {
	t.Parallel()
	res := &Result{
		RunID: "r1", Profile: "grip", Target: "http://127.0.0.1:1",
		Parts:  []PartInfo{{Part: Part{Index: 0, Count: 1}}},
		Ledger: ledger.New(time.Second),
		Errors: map[string]int64{"dial": 3, "status_5xx": 322, "timeout": 3},
		ExtractFailure: &ExtractFailure{Events: 3, Fields: []string{"seq", "ts"},
			Markers: Extract{Seq: `"seq":`, TS: `"ts":`}, Sample: `{"data":"{\"seq\":1,\"ts\":2}"}`},
	}
	var b strings.Builder
	WriteSummary(&b, res)
	out := b.String()
	for _, want := range []string{
		"errors    status_5xx 322, dial 3, timeout 3\n",
		"          note: reordered counts only events whose publish was answered before the later one was sent",
		"WARNING   extract: none of the first 3 event(s) received could be read: seq (marker `\"seq\":`), ts (marker `\"ts\":`) not found",
		"which starts `{\"data\":\"{\\\"seq\\\":1,",
		"--extract-json-string",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
