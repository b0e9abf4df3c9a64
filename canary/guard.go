package canary

import (
	"math"
	"strings"

	"github.com/darktime/darktime/shadow/judge"
)

// guard makes a verdict safe to act on and to record: a check whose
// value, threshold or p-value is not a finite number holds instead of
// promoting, and its numbers are recorded as -1 (JSON has no NaN). The
// case it was written for — delays at or below −tolerance_ms, whose tail
// ratio was 0/0 — the judge now holds itself (judge.tail); the guard
// stays for any other arithmetic that overflows, since a NaN compares
// false and so reads as a pass, and one would break the Result's JSON.
func guard(v judge.Verdict) judge.Verdict {
	v.Checks = append([]judge.Check(nil), v.Checks...)
	var why []string
	for i := range v.Checks {
		if finite(&v.Checks[i]) {
			continue
		}
		c := &v.Checks[i]
		if c.Decision == judge.Promote {
			c.Decision = judge.Hold
		}
		c.Reason = "not a finite number (negative delays? clocks that disagree): " + c.Reason
		why = append(why, c.Name+": "+c.Reason)
	}
	v.Noise = append([]judge.Check(nil), v.Noise...)
	for i := range v.Noise {
		finite(&v.Noise[i])
	}
	if len(why) > 0 && v.Decision == judge.Promote {
		v.Decision, v.Reason = judge.Hold, strings.Join(why, ", ")
	}
	return v
}

// finite replaces a check's non-finite numbers by -1 and says whether
// there were none.
func finite(c *judge.Check) bool {
	ok := true
	for _, x := range []*float64{&c.Value, &c.Threshold, &c.P} {
		if math.IsNaN(*x) || math.IsInf(*x, 0) {
			*x, ok = -1, false
		}
	}
	return ok
}
