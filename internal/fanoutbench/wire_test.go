package fanoutbench

import (
	"fmt"
	"math"
	"testing"
)

func TestPayload(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 10, 50, 100, 1000} {
		b := appendPayload(nil, 123, 1_795_628_608_000_000_000, size)
		if size >= 60 && len(b) != size {
			t.Errorf("size %d: body is %d bytes: %s", size, len(b), b)
		}
		seq, ts, ok := parsePayload(b)
		if !ok || seq != 123 || ts != 1_795_628_608_000_000_000 {
			t.Errorf("size %d: parsePayload(%s) = %d, %d, %v", size, b, seq, ts, ok)
		}
	}
	for _, bad := range []string{"", "{}", `{"seq":,"ts":1}`, `{"seq":1,"ts":x}`, `{"seq":99999999999999999999,"ts":1}`, `{"seq":1}`} {
		if _, _, ok := parsePayload([]byte(bad)); ok {
			t.Errorf("parsePayload(%q) accepted", bad)
		}
	}
	if _, _, ok := parsePayload(fmt.Appendf(nil, `{"seq":1,"ts":%d}`, int64(math.MaxInt64))); !ok {
		t.Error("parsePayload refused MaxInt64")
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add(int64(0), int64(1), 100)
	f.Add(int64(123456), int64(1795628608000000000), 10)
	f.Fuzz(func(t *testing.T, seq, ts int64, size int) {
		if seq < 0 || ts < 0 || size < 0 || size > 4096 {
			return
		}
		b := appendPayload(nil, seq, ts, size)
		gotSeq, gotTS, ok := parsePayload(b)
		if !ok || gotSeq != seq || gotTS != ts {
			t.Fatalf("parsePayload(%s) = %d, %d, %v", b, gotSeq, gotTS, ok)
		}
		_, _, _ = parsePayload(b[:len(b)/2]) // truncated bodies must not panic
	})
}
