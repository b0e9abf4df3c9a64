package shadow

import (
	"fmt"
	"math"
	"net/http"
	"testing"
)

// TestBucketSpread: over 100,000 keys the share selected at 1%, 10% and
// 50% is within 3 standard deviations of the binomial expectation, and
// every bucket decile is as full as the others.
func TestBucketSpread(t *testing.T) {
	t.Parallel()
	const n = 100000
	buckets := make([]int, n)
	for i := range buckets {
		buckets[i] = Bucket("salt", fmt.Sprintf("user-%d", i))
	}
	for _, pct := range []float64{1, 10, 50} {
		bp, _ := basisPoints("", pct)
		got := 0
		for _, b := range buckets {
			if selected(b, bp) {
				got++
			}
		}
		p := pct / 100
		mean, sd := n*p, math.Sqrt(n*p*(1-p))
		if math.Abs(float64(got)-mean) > 3*sd {
			t.Errorf("%v%%: %d selected, want %.0f ± %.0f", pct, got, mean, 3*sd)
		}
	}
	var deciles [10]int
	for _, b := range buckets {
		deciles[b*10/Buckets]++
	}
	mean, sd := n/10.0, math.Sqrt(n*0.1*0.9)
	for i, c := range deciles {
		if math.Abs(float64(c)-mean) > 3*sd {
			t.Errorf("decile %d holds %d keys, want %.0f ± %.0f", i, c, mean, 3*sd)
		}
	}
}

// TestBucketSticky: the same key gets the same bucket every time (and so
// on every proxy instance: no random seed), raising the share only adds
// users, and another salt reshuffles them.
func TestBucketSticky(t *testing.T) {
	t.Parallel()
	// Pinned: a change of the hash would move every user; it must not
	// happen by accident between versions of the proxy.
	if got := Bucket("", "alice"); got != pinnedAlice {
		t.Fatalf("Bucket(\"\", \"alice\") = %d, pinned %d", got, pinnedAlice)
	}
	moved := 0
	for i := range 10000 {
		key := fmt.Sprint(i)
		b := Bucket("a", key)
		if selected(b, 100) && !selected(b, 1000) {
			t.Fatalf("key %s selected at 1%% but not at 10%%", key)
		}
		if b != Bucket("b", key) {
			moved++
		}
	}
	if Bucket("ab", "c") == Bucket("a", "bc") {
		t.Error(`salt and key run together: "ab"+"c" is "a"+"bc"`)
	}
	if moved < 9900 {
		t.Errorf("another salt moved only %d of 10000 users", moved)
	}
}

const pinnedAlice = 4740

func TestKeyExtraction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key    KeyConfig
		header http.Header
		query  string
		remote string
		want   string
		ok     bool
	}{
		// The ip key believes X-Forwarded-For only from a trusted proxy
		// (trusted: 10.0.0.0/8 in every case, below).
		{KeyConfig{From: KeyCookie, Name: "uid"}, http.Header{"Cookie": {"a=1; uid=42; b=2"}}, "", "", "42", true},
		{KeyConfig{From: KeyCookie, Name: "uid"}, http.Header{"Cookie": {"a=1", `uid="q"`}}, "", "", "q", true},
		{KeyConfig{From: KeyCookie, Name: "uid"}, http.Header{"Cookie": {"uidx=1"}}, "", "", "", false},
		{KeyConfig{From: KeyHeader, Name: "x-user"}, http.Header{"X-User": {"bob"}}, "", "", "bob", true},
		{KeyConfig{From: KeyHeader, Name: "X-User"}, nil, "", "", "", false},
		{KeyConfig{From: KeyQuery, Name: "user"}, nil, "a=1&user=%41b&user=2", "", "Ab", true},
		{KeyConfig{From: KeyQuery, Name: "user name"}, nil, "user+name=z", "", "z", true},
		{KeyConfig{From: KeyQuery, Name: "user"}, nil, "user=", "", "", false},
		{KeyConfig{From: KeyQuery, Name: "user"}, nil, "user=%zz", "", "", false},
		{KeyConfig{From: KeyIP}, nil, "", "10.0.0.1:5555", "10.0.0.1", true},
		{KeyConfig{From: KeyIP}, nil, "", "[::1]:80", "::1", true},
		{KeyConfig{From: KeyIP}, http.Header{"X-Forwarded-For": {"192.0.2.7"}}, "", "10.0.0.1:5555", "192.0.2.7", true},
		{KeyConfig{From: KeyIP}, http.Header{"X-Forwarded-For": {"192.0.2.7"}}, "", "198.51.100.1:5555", "198.51.100.1", true},
		{KeyConfig{From: KeyIP}, http.Header{"X-Forwarded-For": {"203.0.113.1, 192.0.2.7"}}, "", "10.0.0.1:5555", "192.0.2.7", true},
		{KeyConfig{From: KeyIP}, http.Header{"Forwarded": {"for=192.0.2.7"}}, "", "10.0.0.1:5555", "192.0.2.7", true},
		{KeyConfig{From: KeyIP}, http.Header{"X-Forwarded-For": {"unknown"}}, "", "10.0.0.1:5555", "", false},
	}
	trusted, err := parseTrusted([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		r := &http.Request{Header: tc.header, RemoteAddr: tc.remote}
		r.URL = mustURL(t, "http://x/?"+tc.query)
		got, ok := newKeyFunc(tc.key, trusted)(r)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%+v %v %q %q: got %q %v, want %q %v", tc.key, tc.header, tc.query, tc.remote, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzKey checks that key extraction never panics and agrees with
// net/http's own parsers where those find a value.
func FuzzKey(f *testing.F) {
	f.Add("uid", "a=1; uid=42", "uid=7&b=2")
	f.Add("u", `u="x"; u=y`, "u=%2&u=1")
	f.Fuzz(func(t *testing.T, name, cookie, query string) {
		if v, ok := cookieValue(http.Header{"Cookie": {cookie}}, name); ok && v == "" {
			t.Fatal("ok with an empty cookie")
		}
		if v, ok := queryValue(query, name); ok {
			if v == "" {
				t.Fatal("ok with an empty value")
			}
			if vals, err := parseQuery(query); err == nil && vals.Get(name) != v && vals.Get(name) != "" {
				t.Fatalf("query %q name %q: %q, net/url says %q", query, name, v, vals.Get(name))
			}
		}
		b := Bucket(name, cookie)
		if b < 0 || b >= Buckets {
			t.Fatalf("bucket %d", b)
		}
		_, _ = clientIP(cookie)
	})
}
