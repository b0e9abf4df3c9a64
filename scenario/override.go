package scenario

import (
	"fmt"
	"strings"
	"time"

	"github.com/darktime/darktime/swarm/params"
)

// Overrides change a scenario between reading and checking it: to run a
// library scenario in another setting, as `make run` runs steady-state on
// embedded defaults with a 10% shadow candidate. The changed scenario is
// checked like any other; a problem an override causes names it.
type Overrides struct {
	// Embedded replaces the target with one embedded node on the
	// in-process broker (no Redis): "embedded defaults".
	Embedded bool
	// ShadowPercent, when positive, puts the shadow proxy in front of the
	// target mirroring this share of users to an embedded candidate.
	ShadowPercent float64
	// Clients replaces clients.count when positive.
	Clients int
	// TimeScale, when positive, multiplies the phases' durations, the
	// faults' times, the thresholds' delays and limits.max_duration (0.25:
	// a quarter of the run). Windows of gates keep their length: they are
	// the gate's definition.
	TimeScale float64
	// Dir replaces outputs.dir.
	Dir string
}

// Set reports whether any override is set.
func (o Overrides) Set() bool {
	return o.Embedded || o.ShadowPercent > 0 || o.Clients > 0 || o.TimeScale > 0 || o.Dir != ""
}

// String lists the overrides as the run command's flags.
func (o Overrides) String() string {
	var f []string
	if o.Embedded {
		f = append(f, "--embedded")
	}
	if o.ShadowPercent > 0 {
		f = append(f, fmt.Sprintf("--shadow %v", o.ShadowPercent))
	}
	if o.Clients > 0 {
		f = append(f, fmt.Sprintf("--clients %d", o.Clients))
	}
	if o.TimeScale > 0 {
		f = append(f, fmt.Sprintf("--time-scale %v", o.TimeScale))
	}
	if o.Dir != "" {
		f = append(f, "--out "+o.Dir)
	}
	return strings.Join(f, " ")
}

// apply changes s and returns the paths it set, which count as given in
// the file when the scenario is checked.
func (o Overrides) apply(s *Scenario) []string {
	var set []string
	if o.Embedded {
		s.Target = Target{Label: s.Target.Label, Broker: BrokerMemory, Nodes: 1}
		set = append(set, "target", "target.broker", "target.nodes")
	}
	if o.ShadowPercent > 0 {
		s.Shadow = &Shadow{Percent: o.ShadowPercent, Mode: ModeMirror, Candidate: CandidateEmbedded}
		set = append(set, "shadow", "shadow.percent", "shadow.mode", "shadow.candidate")
	}
	if o.Clients > 0 {
		s.Clients.Count = o.Clients
		set = append(set, "clients.count")
	}
	if k := o.TimeScale; k > 0 {
		scale := func(d *Duration) {
			if *d > 0 {
				*d = Duration(max(time.Duration(float64(*d)*k).Round(time.Millisecond), time.Millisecond))
			}
		}
		for i := range s.Phases {
			scale(&s.Phases[i].Duration)
		}
		for i := range s.Faults {
			scale(&s.Faults[i].At)
			scale(&s.Faults[i].For)
		}
		for i := range s.Thresholds {
			scale(&s.Thresholds[i].Delay) // from the first publish, like a fault's time
		}
		// The ramp, settle and drain do not scale: keep their time.
		before := s.Limits.MaxDuration
		scale(&s.Limits.MaxDuration)
		rate := s.Clients.Ramp
		if rate <= 0 {
			rate = params.DefaultRamp
		}
		ramp := time.Duration(float64(s.Clients.Count) / rate * float64(time.Second)).Round(time.Second)
		s.Limits.MaxDuration = min(before, s.Limits.MaxDuration+Duration(ramp+settle+drain))
	}
	if o.Dir != "" {
		s.Outputs.Dir = o.Dir
		set = append(set, "outputs.dir")
	}
	return set
}
