package sse_test

import (
	"fmt"

	"github.com/darktime/darktime/internal/sse"
)

func ExampleDecoder() {
	d := sse.NewDecoder(sse.Limits{}, func(m sse.Message) {
		// m's slices are only valid here: copy what you keep.
		fmt.Printf("%s %q id=%s\n", m.Type, m.Data, m.LastEventID)
	})
	// Bytes as they come off the wire, split anywhere.
	for _, read := range []string{"\xEF\xBB\xBFid: 1\r", "\nevent: post\r\ndata: a\r\ndata:", " b\r\n\r\n: keep-alive\n\nretry: 3000\ndata: c\n", "\n"} {
		if err := d.Feed([]byte(read)); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Printf("reconnect with Last-Event-ID %s after %d ms\n", d.LastEventID(), d.RetryMs())
	// Output:
	// post "a\nb" id=1
	// message "c" id=1
	// reconnect with Last-Event-ID 1 after 3000 ms
}

func ExampleAppendEvent() {
	wire, _ := sse.AppendEvent(nil, sse.Event{ID: "7", Event: "post", Data: []byte("line one\nline two")})
	fmt.Printf("%s", wire)
	// Output:
	// id: 7
	// event: post
	// data: line one
	// data: line two
}
