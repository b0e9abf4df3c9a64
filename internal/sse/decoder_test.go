package sse

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// decoded is a copy of one Message.
type decoded struct {
	typ, data, lastID string
}

func (e decoded) String() string { return fmt.Sprintf("{%q %q id=%q}", e.typ, e.data, e.lastID) }

// outcome is everything a stream's decoding tells: the events, the state
// left for a reconnect, and whether a limit was broken.
type outcome struct {
	events  []decoded
	lastID  string
	retryMs int
	broke   bool
}

func (o outcome) String() string {
	return fmt.Sprintf("events %v, last id %q, retry %d, limit broken %v", o.events, o.lastID, o.retryMs, o.broke)
}

func (o outcome) equal(p outcome) bool { return o.String() == p.String() }

// reference decodes a whole stream by the HTML standard's event-stream
// interpretation, step by step, on strings: split the stream into lines,
// then process each line. It is slow and allocates; it is the yardstick
// the Decoder is measured against. Limits: a line longer than MaxLine, or
// a data line that would take the data buffer past MaxEvent, drops the
// event being assembled, and the lines up to the blank line that ends it
// are ignored (that blank line still sets the last event ID, as any
// dispatch does).
func reference(stream []byte, lim Limits) outcome {
	maxLine, maxEvent := lim.MaxLine, lim.MaxEvent
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	if maxEvent <= 0 {
		maxEvent = DefaultMaxEvent
	}
	s := strings.TrimPrefix(string(stream), "\xEF\xBB\xBF") // one leading BOM
	var lines []string
	for {
		i := strings.IndexAny(s, "\r\n")
		if i < 0 {
			break // s is an unterminated last line: never processed
		}
		lines = append(lines, s[:i])
		if strings.HasPrefix(s[i:], "\r\n") {
			i++
		}
		s = s[i+1:]
	}
	var out outcome
	if len(s) > maxLine {
		out.broke = true // the decoder cannot buffer it either
	}
	var data, eventType, lastIDBuffer string
	dropping := false
	for _, line := range lines {
		if len(line) > maxLine {
			out.broke = true
			data, eventType, dropping = "", "", true
			continue
		}
		if line == "" { // dispatch
			out.lastID = lastIDBuffer
			if data != "" && !dropping {
				typ := eventType
				if typ == "" {
					typ = "message"
				}
				out.events = append(out.events, decoded{typ, strings.TrimSuffix(data, "\n"), out.lastID})
			}
			data, eventType, dropping = "", "", false
			continue
		}
		if dropping || line[0] == ':' {
			continue
		}
		field, value := line, ""
		if i := strings.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], strings.TrimPrefix(line[i+1:], " ")
		}
		switch field {
		case "event":
			eventType = value
		case "data":
			if len(data)+len(value)+1 > maxEvent {
				out.broke = true
				data, eventType, dropping = "", "", true
				continue
			}
			data += value + "\n"
		case "id":
			if !strings.Contains(value, "\x00") {
				lastIDBuffer = value
			}
		case "retry":
			if value != "" && strings.Trim(value, "0123456789") == "" {
				n, err := strconv.ParseUint(value, 10, 64)
				if err != nil || n > MaxRetry {
					n = MaxRetry
				}
				out.retryMs = int(n)
			}
		}
	}
	return out
}

// decodeSplit feeds stream to a new Decoder in the pieces given by cuts
// (increasing offsets into stream).
func decodeSplit(stream []byte, lim Limits, cuts []int) outcome {
	var out outcome
	d := NewDecoder(lim, func(m Message) {
		out.events = append(out.events, decoded{string(m.Type), string(m.Data), string(m.LastEventID)})
	})
	prev := 0
	for _, c := range append(cuts, len(stream)) {
		if err := d.Feed(stream[prev:c]); err != nil {
			if !errors.Is(err, ErrLineTooLong) && !errors.Is(err, ErrEventTooLong) {
				panic(err)
			}
			out.broke = true
		}
		prev = c
	}
	out.lastID, out.retryMs = string(d.LastEventID()), d.RetryMs()
	return out
}

// everyStep feeds stream whole, then in pieces of 1, 2, 3 and 7 bytes,
// then cut at each single offset, and returns the outcomes that differ
// from the whole-stream one, described.
func everyStep(stream []byte, lim Limits) (outcome, []string) {
	whole := decodeSplit(stream, lim, nil)
	var diffs []string
	for _, step := range []int{1, 2, 3, 7} {
		var cuts []int
		for c := step; c < len(stream); c += step {
			cuts = append(cuts, c)
		}
		if got := decodeSplit(stream, lim, cuts); !got.equal(whole) {
			diffs = append(diffs, fmt.Sprintf("pieces of %d: %v", step, got))
		}
	}
	for c := 0; c <= len(stream); c++ {
		if got := decodeSplit(stream, lim, []int{c}); !got.equal(whole) {
			diffs = append(diffs, fmt.Sprintf("cut at %d: %v", c, got))
		}
	}
	return whole, diffs
}

func ev(typ, data, lastID string) decoded { return decoded{typ, data, lastID} }

// decoderCases are the tricky parts of the standard, with what a browser
// makes of them; they also seed FuzzDecoder.
var decoderCases = []struct {
	name   string
	stream string
	lim    Limits
	want   outcome
}{
	{"spec: two data lines", "data: YHOO\ndata: +2\ndata: 10\n\n", Limits{}, outcome{events: []decoded{ev("message", "YHOO\n+2\n10", "")}}},
	{"spec: comment, ids, reset by bare id", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n", Limits{},
		outcome{events: []decoded{ev("message", "first event", "1"), ev("message", "second event", ""), ev("message", " third event", "")}}},
	{"spec: data vs data: vs empty", "data\n\ndata\ndata\n\ndata:\n", Limits{}, outcome{events: []decoded{ev("message", "", ""), ev("message", "\n", "")}}},
	{"spec: one space dropped", "data:test\n\ndata: test\n\n", Limits{}, outcome{events: []decoded{ev("message", "test", ""), ev("message", "test", "")}}},
	{"data: and data:  keep all but one space", "data:\n\ndata: \n\ndata:  \n\n", Limits{}, outcome{events: []decoded{ev("message", "", ""), ev("message", "", ""), ev("message", " ", "")}}},
	{"BOM stripped", "\xEF\xBB\xBFdata: x\n\n", Limits{}, outcome{events: []decoded{ev("message", "x", "")}}},
	{"BOM stripped once", "\xEF\xBB\xBF\xEF\xBB\xBFdata: x\n\ndata: y\n\n", Limits{}, outcome{events: []decoded{ev("message", "y", "")}}},
	{"partial BOM is data", "\xEF\xBBdata: x\n\ndata: y\n\n", Limits{}, outcome{events: []decoded{ev("message", "y", "")}}},
	{"BOM only at the start", "data: a\n\n\xEF\xBB\xBFdata: b\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", "")}}},
	{"CR endings", "event: a\rdata: 1\r\rdata: 2\r\r", Limits{}, outcome{events: []decoded{ev("a", "1", ""), ev("message", "2", "")}}},
	{"CRLF endings", "data: 1\r\n\r\ndata: 2\r\ndata: 3\r\n\r\n", Limits{}, outcome{events: []decoded{ev("message", "1", ""), ev("message", "2\n3", "")}}},
	{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", Limits{}, outcome{events: []decoded{ev("message", "a\nb\nc", "")}}},
	{"LF CR is two line ends", "data: a\n\rdata: b\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", ""), ev("message", "b", "")}}},
	{"CR CR LF is two line ends", "data: a\r\r\ndata: b\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", ""), ev("message", "b", "")}}},
	{"field without colon", "data\nevent\nid\nretry\n\n", Limits{}, outcome{events: []decoded{ev("message", "", "")}}},
	{"event type from a bare event line is empty", "event: x\nevent\ndata: a\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", "")}}},
	{"event type", "event: post\ndata: a\n\ndata: b\n\n", Limits{}, outcome{events: []decoded{ev("post", "a", ""), ev("message", "b", "")}}},
	{"explicit message type", "event: message\ndata: a\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", "")}}},
	{"field names are case-sensitive", "Data: a\nDATA: b\ndata: c\n\n", Limits{}, outcome{events: []decoded{ev("message", "c", "")}}},
	{"unknown fields ignored", "datax: no\nfoo: bar\ndata: yes\n\n", Limits{}, outcome{events: []decoded{ev("message", "yes", "")}}},
	{"colons at every place", "id:x:y\ndata:a:b\ne:vent: x\nev:nt\nda:ta: no\ndat:a: no\neven:t: no\nevent:x:y\nx:data: no\ndata\n\n", Limits{},
		outcome{events: []decoded{ev("x:y", "a:b\n", "x:y")}, lastID: "x:y"}},
	{"names of other lengths", "i\nd\ndat\nevents\nretryx: 1\ndatadata: no\nid\x00: no\ndata: yes\n\n", Limits{}, outcome{events: []decoded{ev("message", "yes", "")}}},
	{"colon in the value stays", "data: a: b\n\n", Limits{}, outcome{events: []decoded{ev("message", "a: b", "")}}},
	{"comments", ": hi\n:\n::\ndata: z\n: between\n\n", Limits{}, outcome{events: []decoded{ev("message", "z", "")}}},
	{"comment-only blocks dispatch nothing", ": a\n\n: b\n\n", Limits{}, outcome{}},
	{"id with NUL ignored", "id: 1\ndata: a\n\nid: a\x00b\ndata: b\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", "1"), ev("message", "b", "1")}, lastID: "1"}},
	{"NUL in data kept", "data: a\x00b\n\n", Limits{}, outcome{events: []decoded{ev("message", "a\x00b", "")}}},
	{"id persists across events", "id: 7\ndata: a\n\ndata: b\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", "7"), ev("message", "b", "7")}, lastID: "7"}},
	{"id set at dispatch, not before", "id: 9\ndata: a\n", Limits{}, outcome{}},
	{"empty data dispatch still sets the last event id", "id: 3\n\n", Limits{}, outcome{lastID: "3"}},
	{"event without data: nothing, type cleared", "event: x\n\ndata: a\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", "")}}},
	{"id after data in the block counts", "data: a\nid: 5\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", "5")}, lastID: "5"}},
	{"id value keeps spaces after the first", "id:  x \ndata: a\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", " x ")}, lastID: " x "}},
	{"retry digits", "retry: 3000\n\n", Limits{}, outcome{retryMs: 3000}},
	{"retry with non-digits ignored", "retry: 1000\nretry: 10x\nretry: -5\nretry:  20\nretry: 2.5\nretry\nretry:\n\n", Limits{}, outcome{retryMs: 1000}},
	{"retry zero", "retry: 5\nretry: 0\n\n", Limits{}, outcome{retryMs: 0}},
	{"retry capped", "retry: 99999999999999999999999\n\n", Limits{}, outcome{retryMs: MaxRetry}},
	{"retry applies without dispatch", "retry: 7", Limits{}, outcome{}},
	{"retry applies without dispatch, terminated", "retry: 7\n", Limits{}, outcome{retryMs: 7}},
	{"unterminated final event dropped", "data: a\n\ndata: b\n", Limits{}, outcome{events: []decoded{ev("message", "a", "")}}},
	{"unterminated final line dropped", "data: a\n\ndata: b", Limits{}, outcome{events: []decoded{ev("message", "a", "")}}},
	{"blank lines in a row", "\n\n\r\n\rdata: a\n\n\n", Limits{}, outcome{events: []decoded{ev("message", "a", "")}}},
	{"nchan", ": hi\n\nid: 1795628608:0\ndata: {\"seq\":1}\n\n", Limits{}, outcome{events: []decoded{ev("message", `{"seq":1}`, "1795628608:0")}, lastID: "1795628608:0"}},
	{"line at the limit", "data: 0123\n\n", Limits{MaxLine: 10}, outcome{events: []decoded{ev("message", "0123", "")}}},
	{"line over the limit drops its event", "event: t\ndata: 01234\ndata: ok\nid: 4\n\ndata: next\n\n", Limits{MaxLine: 10},
		outcome{events: []decoded{ev("message", "next", "")}, broke: true}},
	{"id before the long line counts", "id: 4\ndata: 01234\n\ndata: next\n\n", Limits{MaxLine: 10},
		outcome{events: []decoded{ev("message", "next", "4")}, lastID: "4", broke: true}},
	{"long comment breaks the limit too", ":0123456789\n\ndata: a\n\n", Limits{MaxLine: 10}, outcome{events: []decoded{ev("message", "a", "")}, broke: true}},
	{"long unterminated line", "data: a\n\ndata: 0123456789", Limits{MaxLine: 10}, outcome{events: []decoded{ev("message", "a", "")}, broke: true}},
	{"event at the limit", "data: 0123\ndata: 4\n\n", Limits{MaxEvent: 7}, outcome{events: []decoded{ev("message", "0123\n4", "")}}},
	{"event over the limit", "data: 0123\ndata: 45\nevent: x\n\ndata: ok\n\n", Limits{MaxEvent: 7}, outcome{events: []decoded{ev("message", "ok", "")}, broke: true}},
}

func TestDecoder(t *testing.T) {
	t.Parallel()
	for _, tc := range decoderCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stream := []byte(tc.stream)
			if ref := reference(stream, tc.lim); !ref.equal(tc.want) {
				t.Fatalf("the reference disagrees with the table:\n got %v\nwant %v", ref, tc.want)
			}
			got, diffs := everyStep(stream, tc.lim)
			if !got.equal(tc.want) {
				t.Errorf("fed whole:\n got %v\nwant %v", got, tc.want)
			}
			for _, d := range diffs {
				t.Errorf("%s", d)
			}
		})
	}
}

func TestDecoderErrors(t *testing.T) {
	t.Parallel()
	d := NewDecoder(Limits{MaxLine: 12, MaxEvent: 16}, func(Message) {})
	err := d.Feed([]byte("data: 0123456789\n"))
	if !errors.Is(err, ErrLineTooLong) || !strings.Contains(err.Error(), "12 bytes") {
		t.Errorf("long line: %v, want ErrLineTooLong naming the limit", err)
	}
	if err := d.Feed([]byte("\ndata: ok\n\n")); err != nil {
		t.Errorf("after the broken event: %v", err)
	}
	err = d.Feed([]byte("data:01\ndata:012345\ndata:012345\n"))
	if !errors.Is(err, ErrEventTooLong) || !strings.Contains(err.Error(), "16 bytes") {
		t.Errorf("big event: %v, want ErrEventTooLong naming the limit", err)
	}
	// A partial line is refused as soon as it passes the limit: the
	// decoder does not buffer it.
	d = NewDecoder(Limits{MaxLine: 8}, func(Message) {})
	if err := d.Feed([]byte("data: 012")); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("partial long line: %v", err)
	}
	if err := d.Feed([]byte("3456789")); err != nil || len(d.line) != 0 {
		t.Errorf("rest of a refused line: %v, %d bytes buffered", err, len(d.line))
	}
}

func TestDecoderReset(t *testing.T) {
	t.Parallel()
	var got []string
	d := NewDecoder(Limits{}, func(m Message) { got = append(got, string(m.Data)) })
	_ = d.Feed([]byte("id: 1\nretry: 5\ndata: a\n\ndata: part"))
	d.Reset(Limits{}, func(m Message) { got = append(got, "after reset "+string(m.Data)) })
	if len(d.LastEventID()) != 0 || d.RetryMs() != 0 {
		t.Errorf("after Reset: id %q, retry %d", d.LastEventID(), d.RetryMs())
	}
	_ = d.Feed([]byte("\xEF\xBB\xBFdata: b\n\n"))
	if want := []string{"a", "after reset b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// serverLikeStream is n events as darktime's server writes them.
func serverLikeStream(n int) []byte {
	var b []byte
	for i := range n {
		b = fmt.Appendf(b, "id: 1795628608000-%d\nevent: message\ndata: {\"ch\":\"bench_0\",\"seq\":%d,\"ts\":1795628608000000000,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}\n\n", i, i)
		if i%10 == 0 {
			b = append(b, ":\n\n"...) // a keep-alive now and then
		}
	}
	return b
}

func TestDecoderNoAllocs(t *testing.T) {
	events := 0
	d := NewDecoder(Limits{}, func(Message) { events++ })
	stream := serverLikeStream(1000)
	feed := func() {
		for i := 0; i < len(stream); i += 700 { // odd pieces: events and lines span Feeds
			if err := d.Feed(stream[i:min(i+700, len(stream))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	feed() // grow the buffers once
	if allocs := testing.AllocsPerRun(10, feed); allocs != 0 {
		t.Errorf("%v allocations per 1000 events, want 0", allocs)
	}
	if events != 12*1000 {
		t.Errorf("%d events, want %d", events, 12*1000)
	}
}

func BenchmarkDecoder(b *testing.B) {
	const events = 1000
	stream := serverLikeStream(events)
	for _, read := range []int{2 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("read=%d", read), func(b *testing.B) {
			d := NewDecoder(Limits{}, func(Message) {})
			b.ReportAllocs()
			b.SetBytes(int64(len(stream)))
			for b.Loop() {
				for i := 0; i < len(stream); i += read {
					if err := d.Feed(stream[i:min(i+read, len(stream))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*events), "ns/event")
		})
	}
}

// FuzzDecoder checks the Decoder, fed the stream in random pieces (empty
// ones too) and with limits drawn from the seed, against reference.
func FuzzDecoder(f *testing.F) {
	for i, tc := range decoderCases {
		f.Add([]byte(tc.stream), uint64(i))
	}
	f.Add(serverLikeStream(3), uint64(7))
	f.Add([]byte("\xEF"), uint64(0))
	f.Add([]byte("\xEF\xBB\xBF\r\n\r"), uint64(1))
	f.Fuzz(func(t *testing.T, stream []byte, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, seed>>32))
		var lim Limits
		if seed%4 != 0 { // small limits three times in four, so they are hit
			lim = Limits{MaxLine: 1 + rng.IntN(40), MaxEvent: 1 + rng.IntN(80)}
		}
		want := reference(stream, lim)
		var cuts []int
		for c := 0; c < len(stream); {
			c += rng.IntN(9) // 0: an empty Feed
			cuts = append(cuts, min(c, len(stream)))
		}
		if got := decodeSplit(stream, lim, cuts); !got.equal(want) {
			t.Fatalf("stream %q, limits %+v, cuts %v:\n got %v\nwant %v", stream, lim, cuts, got, want)
		}
	})
}
