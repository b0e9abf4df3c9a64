package shadow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// A proxy whose primary, candidate or baseline leads back to itself sends
// every request round again until it runs out of descriptors (issue 12).
// Two guards stop that: SetListeners refuses a target whose address is the
// proxy's own listener (at startup, on reload, on PUT config), and every
// request the proxy sends upstream carries HopHeader with the proxy's
// instance id, so a request that comes back through a path the first
// guard cannot see (a balancer, a DNS name, another proxy) is answered
// 508 Loop Detected instead of being forwarded again.

// HopHeader lists, comma-separated, the instance ids of the darktime
// shadow proxies a request went through.
const HopHeader = "X-Darktime-Hop"

// loopGuard holds the proxy's instance id and its listeners.
type loopGuard struct {
	id string

	mu        sync.Mutex
	listeners []*net.TCPAddr
}

func newLoopGuard() loopGuard {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return loopGuard{id: hex.EncodeToString(b)}
}

// InstanceID is the id this proxy puts in HopHeader.
func (p *Proxy) InstanceID() string { return p.loop.id }

// SetListeners tells the proxy the addresses it serves on and checks the
// configuration in use against them: a primary, candidate or baseline that
// resolves to one of them is an error wrapping ErrInvalidConfig. A
// listener on 0.0.0.0 or :: stands for every local address with its port.
// Later Reloads are checked against the same listeners.
func (p *Proxy) SetListeners(addrs ...net.Addr) error {
	var tcp []*net.TCPAddr
	for _, a := range addrs {
		if ta, ok := a.(*net.TCPAddr); ok {
			tcp = append(tcp, ta)
		}
	}
	p.loop.mu.Lock()
	p.loop.listeners = tcp
	p.loop.mu.Unlock()
	return p.loop.check(p.Config())
}

// check refuses a config whose targets resolve to one of the listeners.
// A name that does not resolve is let through: the hop header still
// catches the loop if there is one.
func (g *loopGuard) check(cfg Config) error {
	g.mu.Lock()
	listeners := g.listeners
	g.mu.Unlock()
	if len(listeners) == 0 {
		return nil
	}
	var local []net.IP
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				local = append(local, ipn.IP)
			}
		}
	}
	for _, t := range []struct{ key, raw string }{{"primary", cfg.Primary}, {"candidate", cfg.Candidate}, {"baseline", cfg.Baseline}} {
		if t.raw == "" {
			continue
		}
		ips, port, err := resolveTarget(t.raw)
		if err != nil {
			continue
		}
		for _, l := range listeners {
			for _, ip := range ips {
				if port == l.Port && sameHost(ip, l.IP, local) {
					return fieldErr("$."+t.key, "%s is this proxy's own listener %s: every request would come back to the proxy; point it at the service behind the proxy",
						t.raw, l)
				}
			}
		}
	}
	return nil
}

// resolveTarget returns the addresses and the port a target URL dials.
func resolveTarget(raw string) ([]net.IP, int, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, 0, err
	}
	portName := u.Port()
	if portName == "" {
		portName = u.Scheme // "http" or "https"
	}
	port, err := net.LookupPort("tcp", portName)
	if err != nil {
		return nil, 0, err
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, port, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, 0, err
	}
	ips := make([]net.IP, len(addrs))
	for i, a := range addrs {
		ips[i] = a.IP
	}
	return ips, port, nil
}

// sameHost reports whether dialing target reaches a socket listening on
// listener: the same address, or a local one when either side is the
// unspecified address (0.0.0.0 and :: listen on, and dial, this host).
func sameHost(target, listener net.IP, local []net.IP) bool {
	if target.Equal(listener) {
		return true
	}
	isLocal := func(ip net.IP) bool {
		if ip.IsLoopback() || ip.IsUnspecified() {
			return true
		}
		for _, l := range local {
			if l.Equal(ip) {
				return true
			}
		}
		return false
	}
	return (listener.IsUnspecified() && isLocal(target)) || (target.IsUnspecified() && isLocal(listener))
}

// looped answers 508 when the request already went through this proxy:
// its HopHeader has the proxy's id. It reports whether it answered.
func (p *Proxy) looped(w http.ResponseWriter, r *http.Request) bool {
	for _, v := range r.Header.Values(HopHeader) {
		for id := range strings.SplitSeq(v, ",") {
			if strings.TrimSpace(id) == p.loop.id {
				p.m.loops.Inc()
				p.log.Warn("request came back through this proxy: not forwarded (a primary, candidate or baseline leads back here)",
					"path", r.URL.Path, "hops", strings.Join(r.Header.Values(HopHeader), ", "))
				writeError(w, http.StatusLoopDetected, errors.New(
					"loop detected: this request already went through this shadow proxy ("+HopHeader+" has its id "+p.loop.id+")"))
				return true
			}
		}
	}
	return false
}

// hopTransport adds the proxy's id to HopHeader on every request it sends.
type hopTransport struct {
	*http.Transport
	id string
}

func (t hopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	out := *req // a RoundTripper must not change the caller's request
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = http.Header{}
	}
	out.Header.Add(HopHeader, t.id)
	return t.Transport.RoundTrip(&out)
}
