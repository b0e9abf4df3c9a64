// Command relayfloor is the cheapest relay we can write in Go: it accepts
// a connection, dials the upstream, and copies bytes both ways, one read
// and one write per chunk, with no HTTP parsing, no selection and no
// reconciliation. It is the floor the shadow proxy's cost per relayed
// event is measured against (scripts/bench-proxy.sh, BENCHMARKS.md), not
// a proxy to use.
package main

import (
	"flag"
	"log"
	"net"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18110", "address")
	upstream := flag.String("upstream", "127.0.0.1:18100", "address to relay to")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go relay(c, *upstream)
	}
}

func relay(c net.Conn, upstream string) {
	defer c.Close()
	u, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer u.Close()
	go pipe(u, c)
	pipe(c, u)
}

// pipe copies from src to dst, one read and one write at a time (no
// io.Copy: it would splice on Linux, below what a proxy that looks at
// the bytes can do).
func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}
