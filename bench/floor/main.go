// Command floor is the cheapest SSE fan-out server we can write in Go: it
// hijacks each subscriber connection and, for every publish, issues one raw
// write(2) per subscriber of the channel, with no queues, accounting,
// history or keep-alives. It is a yardstick for the kernel's cost of a
// delivery under `darktime bench fanout`, not a server to use: see
// BENCHMARKS.md. It answers the same URLs as darktime and nchan
// (GET /sub/{channel}, POST /pub?id={channel}), so one probe drives all
// three (scripts/bench-fanout.sh floor).
//
// -write raw (the default) issues write(2) with syscall.RawSyscall, as
// darktime's fan-out does; -write syscall goes through syscall.Write,
// which tells the Go scheduler about each call (the floor of issue 17's
// first figures), and costs a scheduler hand-off per delivery.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"unsafe"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address")
	mode := flag.String("write", "raw", "raw (syscall.RawSyscall) or syscall (syscall.Write)")
	flag.Parse()
	write := rawWrite
	switch *mode {
	case "raw":
	case "syscall":
		write = func(fd int, p []byte) { _, _ = syscall.Write(fd, p) }
	default:
		log.Fatalf("-write %q: want raw or syscall", *mode)
	}
	var mu sync.Mutex
	chans := map[string][]int{}
	var seq int
	http.HandleFunc("GET /sub/{ch}", func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		f, err := c.(*net.TCPConn).File() // a blocking dup outside Go's poller
		c.Close()
		if err != nil {
			return
		}
		fd := int(f.Fd())
		_ = syscall.SetNonblock(fd, true)
		_, _ = syscall.Write(fd, []byte("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"))
		mu.Lock()
		chans[r.PathValue("ch")] = append(chans[r.PathValue("ch")], fd)
		files = append(files, f) // kept open for the life of the process
		mu.Unlock()
	})
	http.HandleFunc("POST /pub", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seq++
		msg := []byte(fmt.Sprintf("id: %d\ndata: %s\n\n", seq, strings.TrimSpace(string(body))))
		for _, fd := range chans[r.URL.Query().Get("id")] {
			write(fd, msg)
		}
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}

var files []any // guarded by mu in main

// rawWrite is one non-blocking write(2), the scheduler not told.
func rawWrite(fd int, p []byte) {
	_, _, _ = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
}
