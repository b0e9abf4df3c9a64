package eventid

import (
	"errors"
	"testing"
)

// TestParseRange: an id whose millisecond does not fit (past MaxMs, or
// past uint64) is a syntax error, not an id that is older than every
// history (int64 overflow made 9223372036854775808-0 "too_old").
func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"9007199254740991-0", true},
		{"9007199254740991-18446744073709551615", true},
		{"9007199254740992-0", false},
		{"9223372036854775808-0", false},
		{"18446744073709551615-0", false},
		{"18446744073709551616-0", false},
		{"a=9223372036854775808-0", false},
	} {
		_, _, err := ParseLastEventID(tc.in)
		if tc.ok != (err == nil) || err != nil && !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseLastEventID(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
