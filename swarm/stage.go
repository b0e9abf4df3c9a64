package swarm

import "time"

// Stage is one point of a run's timeline, told to Config.Stages. The
// benchmarks (internal/fanoutbench) sample the server's CPU and memory at
// these points, so that their figures cover exactly the swarm's spans.
type Stage struct {
	Name string
	At   time.Time
	// Events is the measured events received so far, duplicates included
	// (what Resources.EventsDuringLoad counts).
	Events int64
	// Open is the connections open.
	Open int64
}

// The stages, in the order a run reaches them. A run that is interrupted
// or fails stops telling them where it stops.
const (
	// StageConnected: every client's first attempt is in (ramp over).
	StageConnected = "connected"
	// StagePublish: settle over, just before the first publish (after
	// OnPublish).
	StagePublish = "publish"
	// StageWindow: Duration after StagePublish, the end of the nominal
	// publish window (told from a timer's goroutine); absent when the
	// publishing stopped before.
	StageWindow = "window"
	// StagePublished: the last publish was answered.
	StagePublished = "published"
	// StageDrained: the drain is over; the clients are still connected.
	StageDrained = "drained"
)

// stage tells Config.Stages, if set, that the run reached name.
func (r *run) stage(name string) {
	at := time.Now()
	r.stageTimes.set(name, at)
	if r.cfg.Stages == nil {
		return
	}
	r.cfg.Stages(Stage{Name: name, At: at, Events: r.eventsSoFar(), Open: r.open.Load()})
}
