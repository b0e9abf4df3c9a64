package histogram

import (
	"testing"
	"time"
)

func TestRecordClamps(t *testing.T) {
	t.Parallel()
	h := New()
	Record(h, -time.Second) // a clock step
	Record(h, 1500*time.Microsecond)
	Record(h, 2*time.Hour)
	if h.TotalCount() != 3 || h.Min() != Min || h.Max() < Max*999/1000 {
		t.Errorf("count %d, min %d, max %d", h.TotalCount(), h.Min(), h.Max())
	}
	if got := Ms(h.ValueAtQuantile(50)); got < 1.49 || got > 1.51 {
		t.Errorf("median %v ms, want 1.5", got)
	}
}
