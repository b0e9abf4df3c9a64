package httpbody_test

import (
	"fmt"

	"github.com/darktime/darktime/internal/httpbody"
)

func ExampleDecoder() {
	head, _ := httpbody.ParseHead([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"))
	d := httpbody.NewDecoder(head.Framing, head.Length, httpbody.SinkFunc(func(b []byte) error {
		fmt.Printf("%q\n", b)
		return nil
	}))
	// Reads that cut the chunk framing anywhere.
	for _, read := range []string{"5\r\nhel", "lo\r\n3\r", "\nabc\r\n0\r\n\r\n"} {
		if err := d.Feed([]byte(read)); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// "hel"
	// "lo"
	// "abc"
	// the server ended the response body
}
