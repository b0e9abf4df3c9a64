package server

import (
	"net/http/httptest"
	"testing"
)

// FuzzParseBatch: the JSON batch parser never panics, and whatever it
// accepts is publishable (valid channels and events are checked by
// Publish, so here: at least one message, none without a channel).
func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`{"events":[{"channel":"a","data":"x"}]}`,
		`{"events":[{"channels":["a","b"],"event":"e","data":{"k":1},"key":"j"}]}`,
		`{"events":[]}`, `{`, `[]`, `{"events":[{"channel":"a","data":"\u0000"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		msgs, err := parseBatch(body, "k")
		if err != nil {
			return
		}
		if len(msgs) == 0 || len(msgs) > maxBatchEvents {
			t.Fatalf("accepted %d messages", len(msgs))
		}
		for _, m := range msgs {
			if m.Channel == "" {
				t.Fatalf("accepted a message without a channel: %q", body)
			}
		}
	})
}

// FuzzSubscribePath: channel lists from paths and queries are validated.
func FuzzSubscribePath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "a//b", "thread:1/forum:2", "%zz", "../x", "a?channel=b,c"} {
		f.Add(s)
	}
	srv := &Server{cfg: Config{MaxChannels: 32}}
	f.Fuzz(func(t *testing.T, path string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.SetPathValue("channels", path)
		names, err := srv.subscribeChannels(req)
		if err != nil {
			return
		}
		for i, n := range names {
			if validChannel(n) != nil {
				t.Fatalf("accepted invalid channel %q", n)
			}
			if i > 0 && names[i-1] >= n {
				t.Fatalf("channels not sorted and unique: %q", names)
			}
		}
	})
}
