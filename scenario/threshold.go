package scenario

import (
	"fmt"
	"reflect"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/darktime/darktime/report"
)

// Threshold is one of the scenario's gates, written either as the gate
// ("p99_delivery_ms[10s] < 50") or as a mapping that adds abort_on_fail:
// {gate: "p99_delivery_ms[10s] < 50", abort_on_fail: true, delay: 10s}.
// With AbortOnFail the runner watches the gate while the run goes and
// stops the run as soon as the gate can no longer pass (k6's
// abortOnFail), from Delay after the first publish on (k6's
// delayAbortEval); everything measured until then is written.
type Threshold struct {
	Gate        string   `yaml:"gate"`
	AbortOnFail bool     `yaml:"abort_on_fail,omitempty"`
	Delay       Duration `yaml:"delay,omitempty"`
}

var thresholdType = reflect.TypeFor[Threshold]()

// UnmarshalYAML reads either form.
func (t *Threshold) UnmarshalYAML(b []byte) error {
	var gate string
	if err := yaml.Unmarshal(b, &gate); err == nil {
		*t = Threshold{Gate: gate}
		return nil
	}
	type plain Threshold // without this method
	var p plain
	if err := yaml.UnmarshalWithOptions(b, &p, yaml.Strict()); err != nil {
		return err
	}
	*t = Threshold(p)
	return nil
}

// MarshalYAML writes the short form when nothing but the gate is set.
func (t Threshold) MarshalYAML() (any, error) {
	if !t.AbortOnFail && t.Delay == 0 {
		return t.Gate, nil
	}
	type plain Threshold
	return plain(t), nil
}

// Gates are the thresholds' gate expressions, in order.
func (s *Scenario) Gates() []string {
	out := make([]string, len(s.Thresholds))
	for i, t := range s.Thresholds {
		out[i] = t.Gate
	}
	return out
}

// thresholdPath is where threshold i's gate is in the file:
// thresholds[i], or thresholds[i].gate in the mapping form.
func (v *validator) thresholdPath(i int) string {
	path := fmt.Sprintf("thresholds[%d]", i)
	if v.has(path + ".gate") {
		return path + ".gate"
	}
	return path
}

// thresholdForm checks the mapping form's keys beside its gate; false
// when there is no gate to parse.
func (v *validator) thresholdForm(i int) bool {
	t := v.s.Thresholds[i]
	path := fmt.Sprintf("thresholds[%d]", i)
	if _, isMap := v.doc.nodes[path].(ast.MapNode); isMap && !v.has(path+".gate") {
		v.require(path+".gate", `the gate, like gate: "p99_delivery_ms[10s] < 50"`)
		return false
	}
	if v.has(path+".delay") && !t.AbortOnFail {
		v.errorf(path+".delay", "delay is when abort_on_fail starts watching the gate: it needs abort_on_fail: true")
	}
	return true
}

// abortOnFail checks that an abort_on_fail gate can be watched while
// the run goes, and when.
func (v *validator) abortOnFail(i int, g report.Gate) {
	t := v.s.Thresholds[i]
	if !t.AbortOnFail {
		return
	}
	path := fmt.Sprintf("thresholds[%d]", i)
	if err := report.Watchable(g); err != nil {
		v.errorf(path+".abort_on_fail", "%v", err)
	}
	if v.s.Clients.Procs > 1 {
		v.errorf(path+".abort_on_fail", "the runner watches the swarm in its own process: abort_on_fail needs clients.procs: 1 (this scenario has %d)", v.s.Clients.Procs)
	}
	switch run := v.s.RunLength(); {
	case t.Delay < 0:
		v.errorf(path+".delay", "must not be negative, got %v", t.Delay)
	case run > 0 && t.Delay.D() >= run:
		v.errorf(path+".delay", "%v is not before the end of the phases (%v): the gate would never be watched", t.Delay, run)
	}
}
