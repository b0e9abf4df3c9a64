package fanoutbench

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

func TestEventStream(t *testing.T) {
	t.Parallel()
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
	var got []string
	s, err := NewEventStream(head, func(data []byte) { got = append(got, string(data)) })
	if err != nil {
		t.Fatal(err)
	}
	body := "retry: 1000\n\nid: 1\ndata: a\n\ndata: b\ndata: c\n\n"
	chunk := []byte("2d\r\n" + body + "\r\n")
	if len(body) != 0x2d {
		t.Fatalf("chunk size %x", len(body))
	}
	for i := range chunk { // byte by byte: state must carry across feeds
		if err := s.Feed(chunk[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 2 || got[0] != "a" || got[1] != "b\nc" {
		t.Fatalf("events %q", got)
	}
	if err := s.Feed([]byte("0\r\n\r\n")); !errors.Is(err, ErrStreamEnded) {
		t.Fatalf("end of body: %v, want ErrStreamEnded", err)
	}
	if _, err := NewEventStream([]byte("HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n\r\n"), nil); err == nil {
		t.Fatal("404 accepted")
	}
}

func TestProcessCPU(t *testing.T) {
	t.Parallel()
	if _, err := ProcessCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if SelfCPU() <= 0 {
		t.Fatal("no CPU time for this process")
	}
}

func TestTypedEventStreamFields(t *testing.T) {
	head := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
	var got []string
	s, err := NewTypedEventStream(head, func(typ, data []byte) { got = append(got, string(typ)+"|"+string(data)) })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Feed([]byte("retry: 1500\nid: 7-1\nevent: tick\ndata: a\n\nid: bad\x00\nretry: x\ndata: b\n\n")); err != nil {
		t.Fatal(err)
	}
	if want := []string{"tick|a", "|b"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", got, want)
	}
	if id := string(s.LastEventID()); id != "7-1" {
		t.Errorf("last event id %q, want 7-1 (an id holding NUL is ignored)", id)
	}
	if s.RetryMs() != 1500 {
		t.Errorf("retry %d, want 1500", s.RetryMs())
	}
}
