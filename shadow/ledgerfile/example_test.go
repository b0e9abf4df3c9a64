package ledgerfile_test

import (
	"encoding/json"
	"fmt"

	"github.com/darktime/darktime/shadow/ledgerfile"
)

// A canary controller reads GET /_darktime/cohorts into Cohorts and hands
// it to the judge.
func ExampleCohorts_Judge() {
	doc := `{"epoch": 2, "step": "divert-5", "since": "2026-12-03T14:30:00Z", "instances": ["a"],
	  "primary":   {"delay_ms": [0, 1, 2], "first_event_ms": [20], "delay_samples": 3, "first_event_samples": 1,
	                "events": 3, "unexplained": 0, "duplicated": 0, "reordered": 0, "streams": 1, "errors": 0, "reconnects": 0},
	  "candidate": {"delay_ms": [40, 41], "first_event_ms": [60], "delay_samples": 2, "first_event_samples": 1,
	                "events": 2, "unexplained": 1, "duplicated": 0, "reordered": 0, "streams": 1, "errors": 0, "reconnects": 1},
	  "baseline": null}`
	var c ledgerfile.Cohorts
	if err := json.Unmarshal([]byte(doc), &c); err != nil {
		fmt.Println(err)
		return
	}
	in := c.Judge()
	fmt.Println(c.Step, len(in.Primary.DelayMS), in.Candidate.DelayMS, in.Candidate.Unexplained, in.Baseline == nil)
	// Output: divert-5 3 [40 41] 1 true
}
