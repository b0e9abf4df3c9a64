// Package changepoint finds where a series of measurements shifted: the
// runs of a history after which a metric's distribution is another.
//
// The method is E-divisive means (Matteson and James, "A Nonparametric
// Approach for Multiple Change Point Analysis of Multivariate Data", JASA
// 2014), the one Apache Otava (formerly Hunter) builds on:
//
//   - The divergence of two stretches X = Z[s:τ) and Y = Z[τ:κ) is the
//     energy statistic with α = 1,
//     Q̂ = nm/(n+m) · (2/(nm) Σ|x−y| − C(n,2)⁻¹ Σ|x−x'| − C(m,2)⁻¹ Σ|y−y'|),
//     n = τ−s and m = κ−τ: the mean distance between the stretches less the
//     mean distances within each. It compares whole distributions, not
//     only means, and needs no noise model: noisy runs make the distances
//     within large, so the same shift weighs less.
//   - Within each segment of the current segmentation, the candidate is
//     the (τ, κ) with the largest Q̂ (κ may stop before the segment's end,
//     so that a later change does not blur an earlier one); the candidate
//     of the segmentation is the largest over its segments.
//   - Significance by permutation: the points of each segment are
//     shuffled (which keeps the segmentation found so far and destroys any
//     order within a segment), the best Q̂ is computed again, Permutations
//     times; p = (1 + #{Q̂_perm ≥ Q̂}) / (1 + Permutations). The candidate is
//     a change point when p ≤ PValue; then its segment is split at τ and
//     the search goes on, until a candidate is not significant (recursive
//     bisection).
//
// The shuffles come from a PCG generator with a fixed seed and an
// explicit Fisher–Yates, so the same series gives the same answer on
// every machine and every Go release: CI does not flap on a change point.
//
// Limits: a change needs MinSize points on each side to be seen, so the
// last MinSize−1 runs of a history cannot hold one yet (compare the latest
// run with the ones before for that); with p ≤ 0.01 about one series in a
// hundred of pure noise shows a change at some point; a slow drift has no
// single change point and is found late or not at all; the cost is
// O(Permutations · n²) per change point, so histories are analysed over a
// window (a few hundred runs).
package changepoint

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// The defaults of Options (its zero value means them).
const (
	DefaultMinSize      = 3
	DefaultPermutations = 499
	DefaultPValue       = 0.01
	DefaultSeed         = 1
)

// Options tune Detect; the zero value means the defaults.
type Options struct {
	// MinSize is the fewest points on each side of a change (default 3,
	// at least 2: a stretch of one point has no spread).
	MinSize int
	// Permutations is how many shuffles the significance test runs
	// (default 499: the smallest p it can give is 1/500).
	Permutations int
	// PValue is the largest p of a change point (default 0.01).
	PValue float64
	// Seed seeds the shuffles (default 1).
	Seed uint64
	// MaxChanges stops after this many change points (0: no limit).
	MaxChanges int
}

func (o Options) withDefaults() Options {
	if o.MinSize == 0 {
		o.MinSize = DefaultMinSize
	}
	if o.Permutations == 0 {
		o.Permutations = DefaultPermutations
	}
	if o.PValue == 0 {
		o.PValue = DefaultPValue
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	return o
}

// Validate reports options that cannot mean anything.
func (o Options) Validate() error {
	o = o.withDefaults()
	switch {
	case o.MinSize < 2:
		return fmt.Errorf("changepoint: min size %d: at least 2 points a side", o.MinSize)
	case o.Permutations < 1:
		return fmt.Errorf("changepoint: %d permutations: at least 1", o.Permutations)
	case !(o.PValue > 0 && o.PValue < 1):
		return fmt.Errorf("changepoint: p-value threshold %v: between 0 and 1", o.PValue)
	case 1/float64(o.Permutations+1) > o.PValue:
		return fmt.Errorf("changepoint: %d permutations cannot give a p-value of %v or less: use at least %d",
			o.Permutations, o.PValue, int(math.Ceil(1/o.PValue))-1)
	case o.MaxChanges < 0:
		return fmt.Errorf("changepoint: max changes %d", o.MaxChanges)
	}
	return nil
}

// ChangePoint is one change found.
type ChangePoint struct {
	// Index is the first point of the new distribution: xs[Index] is the
	// first run after the change.
	Index int `json:"index"`
	// Q is the divergence statistic Q̂ of the candidate.
	Q float64 `json:"q"`
	// PValue is the permutation test's p.
	PValue float64 `json:"p_value"`
	// Permutations is how many shuffles the test ran.
	Permutations int `json:"permutations"`
}

// ErrNotFinite is returned for a series with a NaN or an infinity.
var ErrNotFinite = errors.New("changepoint: a value is not finite")

// Detect finds the change points of xs, in the order of the series.
func Detect(xs []float64, opts Options) ([]ChangePoint, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	for i, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%w: point %d is %v", ErrNotFinite, i, x)
		}
	}
	d := newDetector(xs, opts)
	var found []ChangePoint
	bounds := []int{0, len(xs)} // segment k is [bounds[k], bounds[k+1])
	for opts.MaxChanges == 0 || len(found) < opts.MaxChanges {
		c, ok := d.best(d.prefix(xs), bounds)
		if !ok {
			break
		}
		p, ran := d.significance(xs, bounds, c.q)
		if p > opts.PValue {
			break
		}
		found = append(found, ChangePoint{Index: c.tau, Q: c.q, PValue: p, Permutations: ran})
		bounds = append(bounds, c.tau)
		slices.Sort(bounds)
	}
	slices.SortFunc(found, func(a, b ChangePoint) int { return a.Index - b.Index })
	return found, nil
}

type detector struct {
	n    int
	opts Options
	rng  *rand.PCG
	// p is the (n+1)×(n+1) prefix sum of the distance matrix, reused.
	p []float64
	// perm is the shuffled copy of the series, reused.
	perm []float64
}

func newDetector(xs []float64, opts Options) *detector {
	n := len(xs)
	return &detector{n: n, opts: opts, rng: rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15),
		p: make([]float64, (n+1)*(n+1)), perm: make([]float64, n)}
}

// prefix fills p[a][b] = Σ_{i<a, j<b} |xs[i] − xs[j]| and returns an
// accessor.
func (d *detector) prefix(xs []float64) prefixSums {
	w := d.n + 1
	p := d.p
	for a := 1; a <= d.n; a++ {
		row := 0.0
		for b := 1; b <= d.n; b++ {
			row += math.Abs(xs[a-1] - xs[b-1])
			p[a*w+b] = p[(a-1)*w+b] + row
		}
	}
	return prefixSums{p: p, w: w}
}

type prefixSums struct {
	p []float64
	w int
}

// rect is Σ_{a1≤i<a2, b1≤j<b2} |x_i − x_j|.
func (s prefixSums) rect(a1, a2, b1, b2 int) float64 {
	w := s.w
	return s.p[a2*w+b2] - s.p[a1*w+b2] - s.p[a2*w+b1] + s.p[a1*w+b1]
}

// within is Σ_{a≤i<j<b} |x_i − x_j| (the diagonal is 0, the matrix
// symmetric).
func (s prefixSums) within(a, b int) float64 { return s.rect(a, b, a, b) / 2 }

type candidate struct {
	tau, kappa int
	q          float64
}

// best is the candidate of the segmentation bounds: the largest Q̂ over
// every segment's (τ, κ), the first one on a tie.
func (d *detector) best(s prefixSums, bounds []int) (candidate, bool) {
	m := d.opts.MinSize
	var out candidate
	found := false
	for k := 0; k+1 < len(bounds); k++ {
		start, end := bounds[k], bounds[k+1]
		for tau := start + m; tau+m <= end; tau++ {
			n1 := float64(tau - start)
			wl := s.within(start, tau) / (n1 * (n1 - 1) / 2)
			for kappa := tau + m; kappa <= end; kappa++ {
				n2 := float64(kappa - tau)
				between := s.rect(start, tau, tau, kappa) * 2 / (n1 * n2)
				wr := s.within(tau, kappa) / (n2 * (n2 - 1) / 2)
				q := n1 * n2 / (n1 + n2) * (between - wl - wr)
				if !found || q > out.q {
					out, found = candidate{tau: tau, kappa: kappa, q: q}, true
				}
			}
		}
	}
	return out, found
}

// significance runs the permutation test of a candidate whose statistic
// is q. It stops early once p cannot come under the threshold (the
// answer is then "not significant" and the p a lower bound).
func (d *detector) significance(xs []float64, bounds []int, q float64) (p float64, ran int) {
	r := d.opts.Permutations
	// p = (1+over)/(1+r) ≤ PValue needs over ≤ limit.
	limit := int(math.Floor(d.opts.PValue*float64(r+1))) - 1
	over := 0
	for ran = 1; ran <= r; ran++ {
		copy(d.perm, xs)
		for k := 0; k+1 < len(bounds); k++ {
			d.shuffle(d.perm[bounds[k]:bounds[k+1]])
		}
		c, _ := d.best(d.prefix(d.perm), bounds)
		// A tolerance for the last bits: a permutation that is the
		// series itself must count as "as extreme".
		if c.q >= q-1e-12*math.Abs(q) {
			over++
			if over > limit {
				return float64(1+over) / float64(1+r), ran
			}
		}
	}
	return float64(1+over) / float64(1+r), r
}

// shuffle is Fisher–Yates on the PCG stream, written out so that no
// change of math/rand's helpers changes the answers.
func (d *detector) shuffle(v []float64) {
	for i := len(v) - 1; i > 0; i-- {
		hi, _ := bits.Mul64(d.rng.Uint64(), uint64(i+1))
		j := int(hi)
		v[i], v[j] = v[j], v[i]
	}
}
