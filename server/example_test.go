package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/server"
)

// A subscriber and a publisher on one in-process node.
func Example() {
	srv, err := server.New(server.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	defer srv.Shutdown(context.Background())

	resp, err := http.Get(ts.URL + "/sub/thread:42")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()

	pub, err := http.Post(ts.URL+"/pub?id=thread:42&event=post", "application/json", strings.NewReader(`{"message":"first!"}`))
	if err != nil {
		panic(err)
	}
	pub.Body.Close()
	fmt.Println("publish:", pub.Status)

	ev, err := sse.NewReader(resp.Body, 0).Next()
	if err != nil {
		panic(err)
	}
	fmt.Println(ev.Event, string(ev.Data))
	st := srv.Stats()
	fmt.Println("published", st.Totals.Published, "fanned out", st.Channels["thread:42"].FannedOut)
	// Output:
	// publish: 201 Created
	// post {"message":"first!"}
	// published 1 fanned out 1
}
