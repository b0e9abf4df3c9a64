package hashslot

import "testing"

// The slots Redis's own documentation and CLUSTER KEYSLOT give
// (redistest checks more against a live cluster).
func TestOf(t *testing.T) {
	for _, tc := range []struct {
		key  string
		slot int
	}{
		{"123456789", 12739}, // CRC16/XMODEM check value 0x31C3 mod 16384
		{"foo", 12182},
		{"{user1000}.following", Of("user1000")},
		{"foo{}{bar}", Of("foo{}{bar}")},
	} {
		if got := Of(tc.key); got != tc.slot {
			t.Errorf("Of(%q) = %d, want %d", tc.key, got, tc.slot)
		}
	}
}
