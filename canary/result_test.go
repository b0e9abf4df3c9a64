package canary

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestResultDocument: the --out document and the terminal's blocks of a
// rollout promoted at its first step and rolled back at its second.
func TestResultDocument(t *testing.T) {
	t.Parallel()
	fa := &fakeAdmin{evidence: func(s StepRequest, _ int64, poll int) (Cohorts, error) {
		c := same(20000)
		c.Since = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
		c.Instances = []string{"proxy-1"}
		if s.Name == "divert-1" {
			c.Candidate = cohort(2000, 0, 20000, 0)
			if poll > 1 {
				c.Candidate.Unexplained = 30
			} else {
				c.Candidate.Events = 900 // holds first
			}
		}
		return c, nil
	}}
	clock := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	now := func() time.Time {
		clock = clock.Add(time.Second)
		return clock
	}
	var out bytes.Buffer
	p := testPlan("mirror-5", "divert-1", "divert-5")
	p.Steps[1].MaxDuration = time.Minute
	c, err := New(Config{Plan: p, Admin: fa, Out: &out, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context())
	if err != nil || res.Outcome != RolledBack {
		t.Fatalf("%s: %v", res.Outcome, err)
	}
	var doc bytes.Buffer
	if err := res.WriteJSON(&doc); err != nil {
		t.Fatal(err)
	}
	golden(t, "result.golden.json", doc.Bytes())
	golden(t, "terminal.golden", out.Bytes())
	var back map[string]any
	if err := json.Unmarshal(doc.Bytes(), &back); err != nil || back["schema"] != float64(1) {
		t.Fatalf("schema: %v, %v", back["schema"], err)
	}
}
