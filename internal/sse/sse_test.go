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

// TestReader checks what the Reader adds to the Decoder: one copied event
// per call, the event fields, and how the stream ends.
func TestReader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		stream string
		want   []Event
	}{
		{"events of one read one at a time", "id: 1\nevent: post\ndata: a\n\ndata: b\ndata: c\n\n",
			[]Event{{ID: "1", HasID: true, Event: "post", Data: []byte("a")}, {ID: "1", HasID: true, Event: "message", Data: []byte("b\nc")}}},
		{"empty id resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", []Event{{ID: "1", HasID: true, Event: "message", Data: []byte("a")}, {Event: "message", Data: []byte("b")}}},
		{"retry is the stream's so far", "retry: 10x\ndata: a\n\nretry: 300\n\ndata: b\n\n", []Event{{Event: "message", Data: []byte("a")}, {Retry: 300, Event: "message", Data: []byte("b")}}},
		{"BOM", "\xEF\xBB\xBFdata: x\r\n\r\n", []Event{{Event: "message", Data: []byte("x")}}},
		{"no data no dispatch", "event: x\n\nid: 3\n\n", nil},
		{"unterminated final event dropped", "data: a\n\ndata: b", []Event{{Event: "message", Data: []byte("a")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
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

func TestReaderEnd(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		stream string
		want   error
		lastID string
	}{
		{"data: a\n\n", io.EOF, ""},
		{"data: a\n\nid: 2\n\n", io.EOF, "2"},
		{"data: a\n\ndata: b\n", io.EOF, ""}, // an unfinished event, but whole lines
		{"data: a\n\ndata: b", io.ErrUnexpectedEOF, ""},
		{"\xEF\xBB", io.ErrUnexpectedEOF, ""},
	} {
		r := NewReader(strings.NewReader(tc.stream), 0)
		var err error
		for err == nil {
			_, err = r.Next()
		}
		if err != tc.want || r.LastEventID() != tc.lastID {
			t.Errorf("%q: ended with %v, last id %q; want %v, %q", tc.stream, err, r.LastEventID(), tc.want, tc.lastID)
		}
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
		if retry < 0 || retry > MaxRetry {
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
		wantEvent := event
		if wantEvent == "" {
			wantEvent = "message"
		}
		if got[0].ID != wantID || got[0].Event != wantEvent || got[0].Retry != retry {
			t.Fatalf("got %+v, want id %q event %q retry %d", got[0], wantID, wantEvent, retry)
		}
	})
}
