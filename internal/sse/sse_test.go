package sse

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestAppendEvent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ev   Event
		want string
	}{
		{"data only", Event{Data: []byte("hi")}, "data: hi\n\n"},
		{"all fields", Event{ID: "1-0", Event: "post", Data: []byte("x"), Retry: 2000}, "id: 1-0\nevent: post\ndata: x\nretry: 2000\n\n"},
		{"multi-line LF", Event{Data: []byte("a\nb")}, "data: a\ndata: b\n\n"},
		{"CRLF and CR", Event{Data: []byte("a\r\nb\rc")}, "data: a\ndata: b\ndata: c\n\n"},
		{"trailing newline", Event{Data: []byte("a\n")}, "data: a\ndata: \n\n"},
		{"empty data", Event{Event: "ping"}, "event: ping\ndata: \n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendEvent(nil, tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := AppendEvent(nil, Event{ID: "a\nb"}); !errors.Is(err, ErrInvalidField) {
		t.Fatalf("id with LF: err = %v, want ErrInvalidField", err)
	}
	if _, err := AppendEvent(nil, Event{Event: "x\r"}); !errors.Is(err, ErrInvalidField) {
		t.Fatalf("event with CR: err = %v, want ErrInvalidField", err)
	}
}

func TestAppendComment(t *testing.T) {
	t.Parallel()
	if got := string(AppendComment(nil, "")); got != ":\n\n" {
		t.Fatalf("got %q", got)
	}
	if got := string(AppendComment(nil, "a\nb")); got != ": a b\n\n" {
		t.Fatalf("got %q", got)
	}
}

func readAll(t *testing.T, stream string) []Event {
	t.Helper()
	r := NewReader(strings.NewReader(stream), 0)
	var out []Event
	for {
		ev, err := r.Next()
		if err != nil {
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("Next: %v", err)
			}
			return out
		}
		ev.Data = append([]byte(nil), ev.Data...)
		out = append(out, ev)
	}
}

func TestReaderSpecExamples(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		stream string
		want   []Event
	}{
		{"two data lines", "data: YHOO\ndata: +2\ndata: 10\n\n", []Event{{Data: []byte("YHOO\n+2\n10")}}},
		{"comment then events with id", ": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
			[]Event{{ID: "1", HasID: true, Data: []byte("first event")}, {ID: "", HasID: true, Data: []byte("second event")}, {Data: []byte(" third event")}}},
		{"empty data dispatches", "data\n\ndata\ndata\n\ndata:\n", []Event{{Data: []byte("")}, {Data: []byte("\n")}}},
		{"space after colon optional", "data:test\n\ndata: test\n\n", []Event{{Data: []byte("test")}, {Data: []byte("test")}}},
		{"CR and CRLF endings", "event: a\rdata: 1\r\n\r\ndata: 2\r\r", []Event{{Event: "a", Data: []byte("1")}, {Data: []byte("2")}}},
		{"BOM ignored", "\xEF\xBB\xBFdata: x\n\n", []Event{{Data: []byte("x")}}},
		{"id with NUL ignored", "id: a\x00b\ndata: x\n\n", []Event{{Data: []byte("x")}}},
		{"retry digits only", "retry: 10x\ndata: a\n\nretry: 300\ndata: b\n\n", []Event{{Data: []byte("a")}, {Retry: 300, Data: []byte("b")}}},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []Event{{ID: "7", HasID: true, Data: []byte("a")}, {ID: "7", Data: []byte("b")}}},
		{"no data no dispatch", "event: x\n\nid: 3\n\n", nil},
		{"unterminated final event dropped", "data: a\n\ndata: b", []Event{{Data: []byte("a")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readAll(t, tc.stream)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d events %+v, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				g, w := got[i], tc.want[i]
				if g.ID != w.ID || g.Event != w.Event || g.Retry != w.Retry || !bytes.Equal(g.Data, w.Data) || g.HasID != w.HasID {
					t.Errorf("event %d = %+v (data %q), want %+v (data %q)", i, g, g.Data, w, w.Data)
				}
			}
		})
	}
}

func TestReaderLineLimit(t *testing.T) {
	t.Parallel()
	r := NewReader(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 10)
	if _, err := r.Next(); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("err = %v, want ErrLineTooLong", err)
	}
}

func TestReaderCRSplitAcrossReads(t *testing.T) {
	t.Parallel()
	// A CR at the end of one read and LF at the start of the next is one line end.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte("data: a\r"))
		_, _ = pw.Write([]byte("\n\r\n"))
		_ = pw.Close()
	}()
	r := NewReader(pr, 0)
	ev, err := r.Next()
	if err != nil || string(ev.Data) != "a" {
		t.Fatalf("got %q, %v", ev.Data, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("second Next err = %v, want EOF", err)
	}
}

// FuzzRoundTrip checks that whatever the encoder writes, the reader reads
// back the same event (data with line breaks normalised to LF).
func FuzzRoundTrip(f *testing.F) {
	f.Add("1-0", "post", []byte("hello"), 1000)
	f.Add("", "", []byte("a\r\nb\rc\n"), 0)
	f.Add("x", "", []byte(""), 5)
	f.Fuzz(func(t *testing.T, id, event string, data []byte, retry int) {
		if retry < 0 || retry > 1e9 {
			retry = 0
		}
		ev := Event{ID: id, Event: event, Data: data, Retry: retry}
		wire, err := AppendEvent(nil, ev)
		if err != nil {
			if ValidField(id) && ValidField(event) {
				t.Fatalf("valid fields rejected: %v", err)
			}
			return
		}
		got := readAll(t, string(wire))
		if len(got) != 1 {
			t.Fatalf("decoded %d events from %q", len(got), wire)
		}
		want := bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
		want = bytes.ReplaceAll(want, []byte("\r"), []byte("\n"))
		if !bytes.Equal(got[0].Data, want) {
			t.Fatalf("data = %q, want %q (wire %q)", got[0].Data, want, wire)
		}
		wantID := id
		if bytes.IndexByte([]byte(id), 0) >= 0 {
			wantID = "" // the reader ignores ids with NUL
		}
		if got[0].ID != wantID || got[0].Event != event || got[0].Retry != retry {
			t.Fatalf("got %+v, want id %q event %q retry %d", got[0], wantID, event, retry)
		}
	})
}

// FuzzReader feeds arbitrary bytes to the reader: it must never panic or
// loop, and every event it returns must have been terminated by a blank line.
func FuzzReader(f *testing.F) {
	f.Add([]byte("data: a\n\n"))
	f.Add([]byte("\xEF\xBB\xBFid: 1\r\nretry: 5\r\ndata\r\n\r\n:c\n"))
	f.Fuzz(func(t *testing.T, stream []byte) {
		r := NewReader(bytes.NewReader(stream), 64)
		for i := 0; i <= len(stream); i++ {
			if _, err := r.Next(); err != nil {
				return
			}
		}
		t.Fatalf("more events than bytes in %q", stream)
	})
}
