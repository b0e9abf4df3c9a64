package promtest

import (
	"context"
	"testing"
	"time"
)

func TestStartAndQuery(t *testing.T) {
	t.Parallel()
	s := Start(t)
	ctx := context.Background()
	v, err := s.Scalar(ctx, "vector(42)", time.Now())
	if err != nil || v != 42 {
		t.Fatalf("vector(42) = %v, %v", v, err)
	}
	if got, err := s.Query(ctx, "nothing_here", time.Time{}); err != nil || len(got) != 0 {
		t.Errorf("nothing_here = %v, %v: want an empty vector", got, err)
	}
	if _, err := s.Query(ctx, "sum(", time.Time{}); err == nil {
		t.Error("a bad query did not fail")
	}
}
