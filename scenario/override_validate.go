package scenario

import (
	"fmt"
	"math"
)

// Validate refuses overrides that cannot mean anything, naming the flag
// of `darktime run` that set them: a time scale that is not a finite
// positive number (timeScaleGiven: the flag was given, so 0 is a value,
// not "unset"), negative clients, a shadow share outside 0-100.
func (o Overrides) Validate(timeScaleGiven bool) error {
	k := o.TimeScale
	if math.IsNaN(k) || math.IsInf(k, 0) || k < 0 || timeScaleGiven && k == 0 {
		return fmt.Errorf("--time-scale %v: want a finite number above 0 (0.25: a quarter of the run)", k)
	}
	if o.Clients < 0 {
		return fmt.Errorf("--clients %d: want a positive number", o.Clients)
	}
	if math.IsNaN(o.ShadowPercent) || o.ShadowPercent < 0 || o.ShadowPercent > 100 {
		return fmt.Errorf("--shadow %v: want a share between 0 and 100", o.ShadowPercent)
	}
	return nil
}
