package swarm

import (
	"fmt"
	"math"
	"sort"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// constantRate is vegeta's constant pacer for perS events/s.
func constantRate(perS float64) vegeta.Rate {
	return vegeta.Rate{Freq: 1, Per: max(time.Duration(float64(time.Second)/perS), 1)}
}

// shapedPacer paces perS events/s (a part's rate) in the run's Pacing:
// constant; linear starting at perS; sine around perS. share scales the
// slope and the amplitude, which are given for the whole run. The pacer
// releases requests, which carry cfg.batch() events each.
func (cfg Config) shapedPacer(perS, share float64) vegeta.Pacer {
	perReq := 1 / float64(cfg.batch())
	perS, share = perS*perReq, share*perReq
	switch cfg.Pacing.Kind {
	case PaceLinear:
		return vegeta.LinearPacer{StartAt: constantRate(perS), Slope: cfg.Pacing.Slope * share}
	case PaceSine:
		if cfg.Pacing.Amplitude > 0 {
			return vegeta.SinePacer{Period: cfg.Pacing.Period, Mean: constantRate(perS), Amp: constantRate(cfg.Pacing.Amplitude * share)}
		}
	}
	return constantRate(perS)
}

// pacer builds the vegeta pacer for this part's share of the rate: with
// MaxRate vegeta's zero ConstantPacer, which never waits (the workers
// bound the requests in flight).
func (cfg Config) pacer(share float64) vegeta.Pacer {
	if cfg.MaxRate {
		return vegeta.ConstantPacer{}
	}
	return cfg.shapedPacer(cfg.Rate*share, share)
}

// pacedPhase is one phase as the pacer runs it, in this part's terms.
type pacedPhase struct {
	start, end time.Duration // offsets from the first publish
	first      uint64        // index (since the first publish) of its first hit
	hits       uint64        // hits it sends
	pacer      vegeta.Pacer
	// hotFrac is the share of its hits that go to the hot channel (this
	// part's hot rate over its total rate; 0 unless the part owns it).
	hotFrac    float64
	hotChannel int
}

// phasedPacer follows the phases one after another. vegeta's Pace takes
// the time and the hits since the attack began; each phase's pacer gets
// both counted from the phase's start, so every phase starts fresh at its
// own rate whatever the phases before it did. It stops once every phase
// has sent the hits due within its duration.
type phasedPacer struct {
	phases []pacedPhase
}

// phasedPacer builds the pacer of this part for cfg.Phases. share is the
// part's share of the channels; owner says the part owns each phase's hot
// channel.
func (cfg Config) phasedPacer(share float64, owner func(ch int) bool) *phasedPacer {
	p := &phasedPacer{}
	var at time.Duration
	var first uint64
	for _, ph := range cfg.Phases {
		rate, hot := ph.Rate*share, 0.0
		if ph.Hot {
			rate = cfg.Rate * share
			if owner(ph.HotChannel) {
				hot = ph.Rate
			}
		}
		pp := pacedPhase{start: at, end: at + ph.Duration, first: first, pacer: cfg.shapedPacer(rate+hot, share), hotChannel: ph.HotChannel}
		if rate+hot > 0 {
			pp.hotFrac = hot / (rate + hot)
		}
		pp.hits = hitsDue(pp.pacer, ph.Duration)
		p.phases = append(p.phases, pp)
		at, first = pp.end, first+pp.hits
	}
	return p
}

// hitsDue counts the hits pacer releases within d of its start: the hits
// j for which its Pace(d, j) says "behind schedule, now", which is
// j < H(d), H being the pacer's expected hits (vegeta's own formulas; a
// linear pacer releases its first hit at once). Probing Pace instead would
// not do: the sine pacer's solver answers nonsense for hits far ahead.
func hitsDue(pacer vegeta.Pacer, d time.Duration) uint64 {
	hitsPerS := func(r vegeta.Rate) float64 { return float64(r.Freq) / float64(r.Per) * 1e9 }
	switch p := pacer.(type) {
	case vegeta.ConstantPacer:
		return uint64(p.Freq) * uint64(d/p.Per)
	case vegeta.LinearPacer:
		x := d.Seconds()
		return max(1, uint64(p.Slope*x*x/2+hitsPerS(p.StartAt)*x))
	case vegeta.SinePacer:
		mean, amp := float64(p.Mean.Freq)/float64(p.Mean.Per), float64(p.Amp.Freq)/float64(p.Amp.Per)
		ampHits := amp * float64(p.Period) / (2 * math.Pi)
		return uint64(mean*float64(d) + ampHits*(math.Cos(p.StartAt)-math.Cos(p.StartAt+float64(d)*2*math.Pi/float64(p.Period))))
	}
	panic(fmt.Sprintf("swarm: no hit count for pacer %T", pacer))
}

// phaseOf is the index of the phase that sends hit number hits, or
// len(phases) when every phase is done.
func (p *phasedPacer) phaseOf(hits uint64) int {
	return sort.Search(len(p.phases), func(i int) bool { return p.phases[i].first+p.phases[i].hits > hits })
}

// Pace implements vegeta.Pacer.
func (p *phasedPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	i := p.phaseOf(hits)
	if i == len(p.phases) {
		return 0, true
	}
	ph := &p.phases[i]
	if elapsed < ph.start {
		// The phases before are done ahead of time: wait for this one.
		wait, stop := ph.pacer.Pace(0, hits-ph.first)
		return ph.start - elapsed + max(wait, 0), stop
	}
	return ph.pacer.Pace(elapsed-ph.start, hits-ph.first)
}

// Rate implements vegeta.Pacer.
func (p *phasedPacer) Rate(elapsed time.Duration) float64 {
	for _, ph := range p.phases {
		if elapsed < ph.end {
			return ph.pacer.Rate(max(elapsed-ph.start, 0))
		}
	}
	return 0
}

// hot says whether hit number hits goes to its phase's hot channel, and
// which channel that is. Of a phase's first n hits, floor(n * hotFrac) are
// hot, spread evenly: a credit accumulator, deterministic.
func (p *phasedPacer) hot(hits uint64) (int, bool) {
	i := p.phaseOf(hits)
	if i == len(p.phases) || p.phases[i].hotFrac == 0 {
		return 0, false
	}
	ph := &p.phases[i]
	j := float64(hits - ph.first)
	if math.Floor((j+1)*ph.hotFrac) > math.Floor(j*ph.hotFrac) {
		return ph.hotChannel, true
	}
	return 0, false
}
