package capacity

import (
	"errors"
	"math"
)

// errSingular marks a design whose columns do not tell the coefficients
// apart (a column is a combination of the others).
var errSingular = errors.New("the terms cannot be told apart in these runs")

// olsFit is a least-squares fit y ≈ X·b with the standard error of each
// coefficient and their covariance.
type olsFit struct {
	coef, se []float64
	cov      [][]float64
	// sigma is the residuals' standard deviation (n - p degrees of
	// freedom); n the observations.
	sigma float64
	n     int
}

// ols fits y ≈ X·b by Householder QR (no normal equations: the terms
// differ by orders of magnitude, deliveries/s against held connections).
// Columns are scaled to unit norm first; a column whose part not
// explained by the columns before it is below 1e-9 of its norm makes the
// design singular.
func ols(x [][]float64, y []float64) (*olsFit, error) {
	n := len(y)
	if n == 0 || len(x) != n {
		return nil, errors.New("no observations")
	}
	p := len(x[0])
	if n <= p {
		return nil, errors.New("fewer observations than terms")
	}
	// a is column-major: a[j] is column j, scaled.
	a := make([][]float64, p)
	scale := make([]float64, p)
	for j := range p {
		a[j] = make([]float64, n)
		var norm float64
		for i := range n {
			a[j][i] = x[i][j]
			norm += x[i][j] * x[i][j]
		}
		norm = math.Sqrt(norm)
		if norm == 0 || math.IsNaN(norm) || math.IsInf(norm, 0) {
			return nil, errSingular
		}
		scale[j] = norm
		for i := range n {
			a[j][i] /= norm
		}
	}
	qy := append([]float64(nil), y...)
	r := make([][]float64, p) // upper triangle, r[i][j] for j >= i
	for i := range r {
		r[i] = make([]float64, p)
	}
	for k := range p {
		col := a[k]
		var norm float64
		for i := k; i < n; i++ {
			norm += col[i] * col[i]
		}
		norm = math.Sqrt(norm)
		if norm < 1e-9 {
			return nil, errSingular
		}
		alpha := -norm
		if col[k] < 0 {
			alpha = norm
		}
		// v = col[k:] - alpha·e1, reflected in place.
		v := make([]float64, n-k)
		copy(v, col[k:])
		v[0] -= alpha
		var vv float64
		for _, e := range v {
			vv += e * e
		}
		reflect := func(c []float64) {
			if vv == 0 {
				return
			}
			var dot float64
			for i, e := range v {
				dot += e * c[k+i]
			}
			f := 2 * dot / vv
			for i, e := range v {
				c[k+i] -= f * e
			}
		}
		for j := k; j < p; j++ {
			reflect(a[j])
		}
		reflect(qy)
		for j := k; j < p; j++ {
			r[k][j] = a[j][k]
		}
	}
	// Back-substitute R·b = (Qᵀy)[:p].
	b := make([]float64, p)
	for i := p - 1; i >= 0; i-- {
		s := qy[i]
		for j := i + 1; j < p; j++ {
			s -= r[i][j] * b[j]
		}
		b[i] = s / r[i][i]
	}
	var rss float64
	for i := p; i < n; i++ {
		rss += qy[i] * qy[i]
	}
	sigma := math.Sqrt(rss / float64(n-p))
	// (RᵀR)⁻¹ = R⁻¹R⁻ᵀ.
	rinv := make([][]float64, p)
	for i := range rinv {
		rinv[i] = make([]float64, p)
	}
	for j := range p {
		rinv[j][j] = 1 / r[j][j]
		for i := j - 1; i >= 0; i-- {
			var s float64
			for k := i + 1; k <= j; k++ {
				s += r[i][k] * rinv[k][j]
			}
			rinv[i][j] = -s / r[i][i]
		}
	}
	fit := &olsFit{coef: make([]float64, p), se: make([]float64, p), cov: make([][]float64, p), sigma: sigma, n: n}
	for i := range p {
		fit.cov[i] = make([]float64, p)
		for j := range p {
			var s float64
			for k := max(i, j); k < p; k++ {
				s += rinv[i][k] * rinv[j][k]
			}
			fit.cov[i][j] = sigma * sigma * s / (scale[i] * scale[j])
		}
		fit.coef[i] = b[i] / scale[i]
		fit.se[i] = math.Sqrt(fit.cov[i][i])
	}
	return fit, nil
}
