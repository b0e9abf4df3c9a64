package capacity

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestOLSRecoversCoefficients: synthetic observations with known
// coefficients of very different scales and noise; the fit finds them
// within a few standard errors, and the standard errors shrink with more
// observations.
func TestOLSRecoversCoefficients(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		coef  []float64
		noise float64
		n     int
	}{
		{"exact", []float64{12e-6, 40e-6, 300e-6, 0.004}, 0, 50},
		{"noisy", []float64{12e-6, 40e-6, 300e-6, 0.004}, 0.01, 200},
		{"two terms", []float64{5e3, 2e7}, 1e5, 40},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(1, 2))
			x := make([][]float64, c.n)
			y := make([]float64, c.n)
			for i := range x {
				row := make([]float64, len(c.coef))
				for j := range row {
					row[j] = rng.Float64() * math.Pow(10, float64(4-j))
				}
				row[len(row)-1] = 1
				x[i] = row
				for j, b := range c.coef {
					y[i] += b * row[j]
				}
				y[i] += rng.NormFloat64() * c.noise
			}
			fit, err := ols(x, y)
			if err != nil {
				t.Fatal(err)
			}
			for j, want := range c.coef {
				tol := 4*fit.se[j] + 1e-9*math.Abs(want)
				if math.Abs(fit.coef[j]-want) > tol {
					t.Errorf("coef %d = %g ± %g, want %g", j, fit.coef[j], fit.se[j], want)
				}
				if c.noise == 0 && fit.se[j] > 1e-9*math.Abs(want) {
					t.Errorf("exact data: se %d = %g", j, fit.se[j])
				}
			}
		})
	}
}

func TestOLSSingular(t *testing.T) {
	t.Parallel()
	x := [][]float64{{1, 2, 1}, {2, 4, 1}, {3, 6, 1}, {4, 8, 1}}
	if _, err := ols(x, []float64{1, 2, 3, 4}); err == nil {
		t.Error("a column twice the other fitted")
	}
	if _, err := ols([][]float64{{1, 1}, {2, 1}}, []float64{1, 2}); err == nil {
		t.Error("as many observations as terms fitted")
	}
}
