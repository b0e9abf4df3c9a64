package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/darktime/darktime/internal/tstest"
)

func TestExtract(t *testing.T) {
	t.Parallel()
	escaped := Extract{Seq: `\"seq\":`, TS: `\"ts\":`, Channel: `\"ch\":\"`}
	natural := defaultExtract
	jsonString := defaultExtract
	jsonString.JSONString = true
	tests := []struct {
		name    string
		e       Extract
		data    string
		ok      bool
		channel string
		missing []string
	}{
		{"plain body", natural, `{"ch":"c_1","seq":12,"ts":34,"pad":"x"}`, true, "c_1", nil},
		{"escaped body, escaped markers: the channel ends at \\\"", escaped,
			`{"channel":"c_1","data":"{\"ch\":\"c_1\",\"seq\":12,\"ts\":34}"}`, true, "c_1", nil},
		{"escaped body, natural markers", natural,
			`{"channel":"c_1","data":"{\"ch\":\"c_1\",\"seq\":12,\"ts\":34}"}`, false, "", []string{"seq", "ts", "channel"}},
		{"escaped body, natural markers, json_string", jsonString,
			`{"channel":"c_1","data":"{\"ch\":\"c_1\",\"seq\":12,\"ts\":34}"}`, true, "c_1", nil},
		{"json_string on plain data", jsonString, `{"ch":"c_1","seq":12,"ts":34}`, true, "c_1", nil},
		{"json_string: \\u escapes and \\\\ before a quote", jsonString,
			`"{\u0022ch\u0022:\"c_1\\\",\"seq\":12,\"ts\":34}"`, true, `c_1\\`, nil},
		{"json_string: a marker never starts inside an escape", Extract{Seq: `n"seq":`, TS: `"ts":`, Channel: `"ch":"`, JSONString: true},
			`{\"ch\":\"c\",\n\"seq\":12,\"ts\":34}`, false, "", []string{"seq"}},
		{"ts missing", jsonString, `{\"ch\":\"c_1\",\"seq\":12,\"time\":34}`, false, "", []string{"ts"}},
		{"no digits", natural, `{"ch":"c_1","seq":x,"ts":34}`, false, "", []string{"seq"}},
		{"overflow", natural, `{"ch":"c_1","seq":99999999999999999999,"ts":34}`, false, "", []string{"seq"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &compiledProfile{Profile: Profile{Extract: tt.e}, multi: true}
			data := []byte(tt.data)
			seq, ts, ch, ok := c.extract(data)
			if ok != tt.ok || ok && (seq != 12 || ts != 34 || string(ch) != tt.channel) {
				t.Errorf("extract(%s) = %d, %d, %q, %v; want 12, 34, %q, %v", tt.data, seq, ts, ch, ok, tt.channel, tt.ok)
			}
			if got := c.missing(data); !slices.Equal(got, tt.missing) {
				t.Errorf("missing = %q, want %q", got, tt.missing)
			}
			if string(data) != tt.data {
				t.Errorf("extract changed the data to %s", data)
			}
		})
	}
}

// TestCompileChecksOnlyWhatCannotWork: markers that do not appear in the
// publish body are accepted (the server may wrap or unwrap it); empty or
// ambiguous markers are refused.
func TestCompileChecksOnlyWhatCannotWork(t *testing.T) {
	t.Parallel()
	base := builtinProfiles["nchan"]
	// A publish API that takes the event text inside a JSON string
	// delivers it unescaped: the natural markers are right.
	wrapped := base
	wrapped.Publish.Body = `{"items":[{"channel":"{channel}","content":"{\"seq\":{seq},\"ts\":{ts}}"}]}`
	if _, err := compileProfile(wrapped, false); err != nil {
		t.Errorf("an escaped publish body with natural markers: %v", err)
	}
	for _, tt := range []struct {
		name  string
		e     Extract
		multi bool
		says  string
	}{
		{"no seq marker", Extract{TS: `"ts":`}, false, "text before seq"},
		{"one marker for both", Extract{Seq: `"n":`, TS: `"n":`}, false, "same marker"},
		{"several channels without a channel marker", Extract{Seq: `"seq":`, TS: `"ts":`}, true, "extract.channel"},
	} {
		p := base
		p.ChannelSeparator, p.Subscribe = "/", "{target}/sub/{channels}"
		p.Extract = tt.e
		if _, err := compileProfile(p, tt.multi); !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%s: %v, want ErrTemplate saying %q", tt.name, err, tt.says)
		}
	}
}

func TestSampleOf(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 100) // 200 bytes
	s := sampleOf([]byte(long))
	if !utf8.ValidString(s) || !strings.HasSuffix(s, "…") || len(s) > sampleBytes+len("…") {
		t.Errorf("sample %q (%d bytes): want valid UTF-8, at most %d bytes and a cut mark", s, len(s), sampleBytes)
	}
	if s := sampleOf([]byte("short")); s != "short" {
		t.Errorf("sample %q", s)
	}
}

// FuzzExtract: reading the body escaped inside a JSON string with
// JSONString finds what reading the body itself finds.
func FuzzExtract(f *testing.F) {
	f.Add(`{"ch":"c_1","seq":12,"ts":34}`, `"seq":`, `"ts":`, `"ch":"`)
	f.Add(`seq=1 ts=2 ch="a\"`, "seq=", "ts=", `ch="`)
	f.Add(`<"\n\t/ \u2028x"seq":5"ts":6`, `"seq":`, `"ts":`, `x`)
	f.Fuzz(func(t *testing.T, body, seqM, tsM, chM string) {
		if !utf8.ValidString(body) || strings.ContainsAny(body, "\u2028\u2029") {
			t.Skip("json.Marshal rewrites these")
		}
		plain := &compiledProfile{Profile: Profile{Extract: Extract{Seq: seqM, TS: tsM, Channel: chM}}, multi: true}
		inString := &compiledProfile{Profile: Profile{Extract: Extract{Seq: seqM, TS: tsM, Channel: chM, JSONString: true}}, multi: true}
		quoted, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		quoted = quoted[1 : len(quoted)-1] // the string's content
		s1, t1, c1, ok1 := plain.extract([]byte(body))
		s2, t2, _, ok2 := inString.extract(quoted)
		if ok1 != ok2 || s1 != s2 || t1 != t2 {
			t.Fatalf("body %q: plain %d %d %q %v, in a JSON string %d %d %v", body, s1, t1, c1, ok1, s2, t2, ok2)
		}
		if !slices.Equal(plain.missing([]byte(body)), inString.missing(quoted)) {
			t.Fatalf("body %q: missing %q plain, %q in a JSON string", body, plain.missing([]byte(body)), inString.missing(quoted))
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	body := `{"ch":"bench_0","seq":12345,"ts":1700000000123456789,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`
	quoted, _ := json.Marshal(body)
	envelope := []byte(`{"channel":"bench_0","data":` + string(quoted) + `}`)
	for _, bb := range []struct {
		name string
		e    Extract
		data []byte
	}{
		{"plain", defaultExtract, []byte(body)},
		{"json_string", Extract{Seq: `"seq":`, TS: `"ts":`, Channel: `"ch":"`, JSONString: true}, envelope},
	} {
		b.Run(bb.name, func(b *testing.B) {
			c := &compiledProfile{Profile: Profile{Extract: bb.e}, multi: true}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, ok := c.extract(bb.data); !ok {
					b.Fatal("not read")
				}
			}
		})
	}
}

// gripServer is a small third-party SSE server in the style of a GRIP
// proxy (Pushpin, Fanout): it delivers each publish's body inside a JSON
// envelope, {"channel":"c","data":"<the body as a JSON string>"}, so every
// quote of the body arrives escaped.
type gripServer struct {
	mu   sync.Mutex
	subs map[string]map[chan []byte]bool
	id   int
}

// startGripServer serves POST /publish/{channel} and GET
// /sub/{a,b,...} on loopback until the test ends.
func startGripServer(t *testing.T) string {
	t.Helper()
	g := &gripServer{subs: map[string]map[chan []byte]bool{}}
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish/{channel}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		data, _ := json.Marshal(struct {
			Channel string `json:"channel"`
			Data    string `json:"data"`
		}{r.PathValue("channel"), string(body)})
		g.mu.Lock()
		g.id++
		ev := fmt.Appendf(nil, "id: %d\ndata: %s\n\n", g.id, data)
		for sub := range g.subs[r.PathValue("channel")] {
			sub <- ev // buffered beyond what a test publishes
		}
		g.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	mux.HandleFunc("GET /sub/{channels}", func(w http.ResponseWriter, r *http.Request) {
		channels := strings.Split(r.PathValue("channels"), ",")
		sub := make(chan []byte, 4096)
		g.mu.Lock()
		for _, ch := range channels {
			if g.subs[ch] == nil {
				g.subs[ch] = map[chan []byte]bool{}
			}
			g.subs[ch][sub] = true
		}
		g.mu.Unlock()
		defer func() {
			g.mu.Lock()
			for _, ch := range channels {
				delete(g.subs[ch], sub)
			}
			g.mu.Unlock()
		}()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		_ = rc.Flush()
		for {
			select {
			case ev := <-sub:
				if _, err := w.Write(ev); err != nil {
					return
				}
				_ = rc.Flush()
			case <-r.Context().Done():
				return
			case <-done:
				return
			}
		}
	})
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(done) }) // runs first: the streams end, then Close waits for them
	return ts.URL
}

func gripProfile(e Extract) Profile {
	return Profile{
		Name: "grip", Subscribe: "{target}/sub/{channels}", ChannelSeparator: ",", ChannelPattern: `^\w+$`,
		Publish: PublishTemplate{Method: "POST", URL: "{target}/publish/{channel}", Headers: []string{"Content-Type: text/plain"}, Body: defaultBody},
		Extract: e,
	}
}

// TestRunJSONStringEnvelope runs the swarm against a server that wraps
// each body in a JSON envelope: the body's natural markers read it with
// JSONString, escaped markers without; markers that cannot read it are
// reported with the failing fields and a sample of the data.
func TestRunJSONStringEnvelope(t *testing.T) {
	tstest.Long(t, "four swarm runs (~2 s each)")
	t.Parallel()
	target := startGripServer(t)
	natural := defaultExtract
	inString := defaultExtract
	inString.JSONString = true
	wrongTS := inString
	wrongTS.TS = `"time":`
	tests := []struct {
		name   string
		e      Extract
		fields []string // nil: every event read
	}{
		{"natural markers, json_string", inString, nil},
		{"escaped markers", Extract{Seq: `\"seq\":`, TS: `\"ts\":`, Channel: `\"ch\":\"`}, nil},
		{"natural markers without json_string", natural, []string{"seq", "ts", "channel"}},
		{"a wrong ts marker", wrongTS, []string{"ts"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := quickConfig(t, target)
			cfg.Profile = gripProfile(tt.e)
			cfg.Distribution = Distribution{Kind: DistSeveral, PerClient: 2} // the channel marker is needed
			cfg.Clients, cfg.Duration = 20, time.Second
			res, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			f := res.ExtractFailure
			if tt.fields == nil {
				if f != nil {
					t.Fatalf("extract failure %+v, want every event read", f)
				}
				checkBalanced(t, res)
				if res.Events.Malformed != 0 || res.Events.Foreign != 0 {
					t.Errorf("events %+v: want none malformed or foreign", res.Events)
				}
				return
			}
			if f == nil {
				t.Fatalf("no extract failure reported; events %+v", res.Events)
			}
			if f.Events != probeEvents || !slices.Equal(f.Fields, tt.fields) || f.Markers != tt.e {
				t.Errorf("extract failure %+v: want %d events, fields %q, markers %+v", f, probeEvents, tt.fields, tt.e)
			}
			if !strings.HasPrefix(f.Sample, `{"channel":"`) || !strings.Contains(f.Sample, `\"seq\":`) || len(f.Sample) > sampleBytes+len("…") {
				t.Errorf("sample %q: want the start of the received data", f.Sample)
			}
			msg := f.String()
			for _, field := range tt.fields {
				if !strings.Contains(msg, field+" (marker ") {
					t.Errorf("warning %q does not name %s", msg, field)
				}
			}
			if hint := strings.Contains(msg, "--extract-json-string"); hint == tt.e.JSONString {
				t.Errorf("warning %q: the --extract-json-string hint is for markers without it", msg)
			}
			// The failure survives the file and a merge.
			var buf bytes.Buffer
			if err := res.Write(&buf); err != nil {
				t.Fatal(err)
			}
			back, err := ReadResult(&buf)
			if err != nil {
				t.Fatal(err)
			}
			merged, err := Merge(back)
			if err != nil {
				t.Fatal(err)
			}
			if merged.ExtractFailure == nil || !slices.Equal(merged.ExtractFailure.Fields, tt.fields) {
				t.Errorf("after write, read and merge: %+v", merged.ExtractFailure)
			}
		})
	}
}
