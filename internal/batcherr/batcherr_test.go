package batcherr

import (
	"errors"
	"testing"
)

func TestSummary(t *testing.T) {
	t.Parallel()
	a, b := errors.New("a"), errors.New("b")
	for _, tt := range []struct {
		errs   []error
		failed int
		first  error
	}{
		{nil, 0, nil},
		{[]error{nil, nil}, 0, nil},
		{[]error{nil, a, nil, b}, 2, a},
		{[]error{b}, 1, b},
	} {
		failed, first := Summary(tt.errs)
		if failed != tt.failed || first != tt.first {
			t.Errorf("Summary(%v) = %d, %v; want %d, %v", tt.errs, failed, first, tt.failed, tt.first)
		}
	}
}
