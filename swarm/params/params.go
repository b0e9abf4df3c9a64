// Package params is the swarm's vocabulary without the swarm: the
// defaults and bounds of swarm.Config, and the value types of its fields —
// Distribution, Pacing, Lifetime — with their parsers. It is a leaf (no
// clients, no publishers, no Redis), so that a scenario is validated and a
// result file's config echo is read without linking the engine. package
// swarm keeps every name as an alias (swarm.Pacing, swarm.DefaultRamp, ...).
package params

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrConfig marks an invalid swarm config; the CLI reports it as a usage
// error. swarm.ErrConfig is the same error.
var ErrConfig = errors.New("invalid swarm config")

// Defaults for the zero values of swarm.Config.
const (
	DefaultTarget         = "http://127.0.0.1:8080"
	DefaultClients        = 1000
	DefaultChannels       = 10
	DefaultRamp           = 1000
	DefaultRate           = 10
	DefaultSize           = 100
	DefaultSettle         = time.Second
	DefaultDuration       = 30 * time.Second
	DefaultDrain          = 2 * time.Second
	DefaultChurnGrace     = time.Second
	DefaultRetry          = 3 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultLateAfter      = 5 * time.Second
	DefaultLedgerWindow   = time.Second
	// MaxConnsPerSource keeps each source address inside its ~28,000
	// ephemeral ports.
	MaxConnsPerSource = 20_000
	// MaxDuration keeps every run finite.
	MaxDuration = 24 * time.Hour
)

// Distribution kinds.
const (
	DistUniform    = "uniform"     // each client on one channel drawn uniformly
	DistZipf       = "zipf"        // one channel drawn from a Zipf law: channel 0 is hot
	DistOne        = "one"         // every client on a channel of its own
	DistRoundRobin = "round-robin" // client i on channel i mod Channels: the same count (±1) on every channel
	DistSeveral    = "several"     // PerClient distinct channels each, drawn uniformly
)

// Distribution assigns channels to clients.
type Distribution struct {
	Kind      string  `json:"kind"`
	S         float64 `json:"s,omitempty"`          // zipf exponent (> 1; default 1.1)
	PerClient int     `json:"per_client,omitempty"` // several: channels per client (3)
}

// ParseDistribution reads "uniform", "zipf[:S]", "one", "round-robin" or
// "several[:N]".
func ParseDistribution(s string) (Distribution, error) {
	kind, arg, hasArg := strings.Cut(s, ":")
	d := Distribution{Kind: kind}
	var err error
	switch {
	case kind == DistZipf && hasArg:
		d.S, err = strconv.ParseFloat(arg, 64)
	case kind == DistSeveral && hasArg:
		d.PerClient, err = strconv.Atoi(arg)
	case hasArg:
		err = errors.New("takes no argument")
	}
	if err != nil {
		return d, fmt.Errorf("%w: distribution %q: %v", ErrConfig, s, err)
	}
	return d, d.Validate()
}

// Validate checks the distribution's kind and argument.
func (d Distribution) Validate() error {
	switch d.Kind {
	case "", DistUniform, DistOne, DistRoundRobin:
	case DistZipf:
		if d.S != 0 && (d.S <= 1 || math.IsInf(d.S, 0) || math.IsNaN(d.S)) {
			return fmt.Errorf("%w: zipf exponent must be > 1, got %v", ErrConfig, d.S)
		}
	case DistSeveral:
		if d.PerClient < 0 || d.PerClient > 32 {
			return fmt.Errorf("%w: several: between 1 and 32 channels per client, got %d", ErrConfig, d.PerClient)
		}
	default:
		return fmt.Errorf("%w: distribution %q: want uniform, zipf[:S], one, round-robin or several[:N]", ErrConfig, d.Kind)
	}
	return nil
}

// Pacing kinds (vegeta's pacers).
const (
	PaceConstant = "constant"
	PaceLinear   = "linear"
	PaceSine     = "sine"
)

// Pacing shapes the publish rate over time around swarm.Config.Rate.
type Pacing struct {
	Kind string `json:"kind"`
	// Slope (linear) is the change of rate in events/s per second,
	// starting at Rate.
	Slope float64 `json:"slope,omitempty"`
	// Period and Amplitude (sine): the rate swings Rate ± Amplitude.
	Period    time.Duration `json:"period,omitempty"`
	Amplitude float64       `json:"amplitude,omitempty"`
}

// ParsePacing reads "constant", "linear:SLOPE" or "sine:PERIOD:AMPLITUDE".
func ParsePacing(s string) (Pacing, error) {
	parts := strings.Split(s, ":")
	p := Pacing{Kind: parts[0]}
	var err error
	switch {
	case p.Kind == PaceConstant && len(parts) == 1:
	case p.Kind == PaceLinear && len(parts) == 2:
		p.Slope, err = strconv.ParseFloat(parts[1], 64)
	case p.Kind == PaceSine && len(parts) == 3:
		if p.Period, err = time.ParseDuration(parts[1]); err == nil {
			p.Amplitude, err = strconv.ParseFloat(parts[2], 64)
		}
	default:
		err = errors.New("want constant, linear:SLOPE or sine:PERIOD:AMPLITUDE")
	}
	if err != nil {
		return p, fmt.Errorf("%w: pacing %q: %v", ErrConfig, s, err)
	}
	return p, nil
}

// Validate checks the pacing for a run at rate events/s.
func (p Pacing) Validate(rate float64) error {
	switch p.Kind {
	case "", PaceConstant:
	case PaceLinear:
		if math.IsNaN(p.Slope) || math.IsInf(p.Slope, 0) {
			return fmt.Errorf("%w: linear slope must be a number", ErrConfig)
		}
	case PaceSine:
		if p.Period <= 0 || p.Amplitude < 0 || p.Amplitude >= rate {
			return fmt.Errorf("%w: sine needs a positive period and 0 <= amplitude < rate", ErrConfig)
		}
	default:
		return fmt.Errorf("%w: pacing %q: want constant, linear or sine", ErrConfig, p.Kind)
	}
	return nil
}

// UpperBound is a generous bound on the publishes of a run of d at rate.
func (p Pacing) UpperBound(rate float64, d time.Duration) float64 {
	s := d.Seconds()
	switch p.Kind {
	case PaceLinear:
		return rate*s + max(0, p.Slope)*s*s/2 + 2
	case PaceSine:
		return (rate+p.Amplitude)*s + 2
	}
	return rate*s + 2
}

// Lifetime kinds for churn.
const (
	LifeNone    = "none"
	LifeFixed   = "fixed"
	LifeExp     = "exp"
	LifeUniform = "uniform"
)

// Lifetime is a distribution of connection lifetimes.
type Lifetime struct {
	Kind string        `json:"kind"`
	Mean time.Duration `json:"mean,omitempty"` // fixed and exp
	Min  time.Duration `json:"min,omitempty"`  // uniform
	Max  time.Duration `json:"max,omitempty"`  // uniform
}

// ParseLifetime reads "none", "fixed:D", "exp:MEAN" or "uniform:MIN-MAX".
func ParseLifetime(s string) (Lifetime, error) {
	kind, arg, _ := strings.Cut(s, ":")
	l := Lifetime{Kind: kind}
	var err error
	switch kind {
	case LifeNone, "":
		l.Kind = ""
		if arg != "" {
			err = errors.New("takes no argument")
		}
	case LifeFixed, LifeExp:
		l.Mean, err = time.ParseDuration(arg)
	case LifeUniform:
		lo, hi, ok := strings.Cut(arg, "-")
		if !ok {
			err = errors.New("want uniform:MIN-MAX")
			break
		}
		if l.Min, err = time.ParseDuration(lo); err == nil {
			l.Max, err = time.ParseDuration(hi)
		}
	default:
		err = errors.New("want none, fixed:D, exp:MEAN or uniform:MIN-MAX")
	}
	if err == nil {
		err = l.Validate()
	}
	if err != nil {
		return l, fmt.Errorf("%w: churn %q: %v", ErrConfig, s, err)
	}
	return l, nil
}

// minLifetime keeps churn from turning into a connect flood.
const minLifetime = 100 * time.Millisecond

// Validate checks the lifetime's kind and bounds.
func (l Lifetime) Validate() error {
	switch l.Kind {
	case "", LifeNone:
	case LifeFixed, LifeExp:
		if l.Mean < minLifetime {
			return fmt.Errorf("%w: lifetime must be at least %v", ErrConfig, minLifetime)
		}
	case LifeUniform:
		if l.Min < minLifetime || l.Max < l.Min {
			return fmt.Errorf("%w: uniform lifetime needs %v <= min <= max", ErrConfig, minLifetime)
		}
	default:
		return fmt.Errorf("%w: lifetime %q", ErrConfig, l.Kind)
	}
	return nil
}

// Enabled reports whether clients churn.
func (l Lifetime) Enabled() bool { return l.Kind != "" && l.Kind != LifeNone }

// Draw returns a lifetime; u is uniform in [0,1).
func (l Lifetime) Draw(u float64) time.Duration {
	switch l.Kind {
	case LifeFixed:
		return l.Mean
	case LifeExp:
		return max(minLifetime, time.Duration(-math.Log(1-u)*float64(l.Mean)))
	case LifeUniform:
		return l.Min + time.Duration(u*float64(l.Max-l.Min))
	}
	return 0
}
