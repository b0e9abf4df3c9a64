package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Listen says where and how Run serves a Server.
type Listen struct {
	// Addr is the address of the public listener (DefaultListen).
	Addr string
	// Admin, when set, serves /stats, /metrics, /queue/* and /healthz on
	// a listener of its own and takes them off Addr (Config.SeparateAdmin).
	Admin string
	// TLSCert and TLSKey, together, serve HTTPS (with HTTP/2).
	TLSCert, TLSKey string
	// Demo publishes a tick to channel "demo" every second and prints how
	// to watch it to Banner.
	Demo   bool
	Banner io.Writer
	// ShutdownTimeout bounds the graceful shutdown once ctx ends: telling
	// subscribers to reconnect (0: do not wait; the flag's default is
	// DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
}

// runError is an error of Run's input that the user fixes (a flag, a
// file, an address): it wraps ErrConfig and says only what is wrong.
type runError struct{ err error }

func (e runError) Error() string   { return e.err.Error() }
func (e runError) Unwrap() []error { return []error{ErrConfig, e.err} }

func runErrorf(format string, args ...any) error { return runError{fmt.Errorf(format, args...)} }

// check refuses what cannot work before anything listens.
func (l Listen) check(cfg Config) error {
	switch {
	case (l.TLSCert == "") != (l.TLSKey == ""):
		return runErrorf("--tls-cert and --tls-key go together")
	case l.ShutdownTimeout < 0:
		return runErrorf("--shutdown-timeout %v is negative", l.ShutdownTimeout)
	case cfg.Workers > 0 && cfg.RedisURL == "":
		return runErrorf("--workers needs --redis: hooks go through the Redis job queue")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if l.TLSCert != "" {
		// Load the pair now: a missing or bad file is an error before
		// "listening" is logged, not after.
		if _, err := tls.LoadX509KeyPair(l.TLSCert, l.TLSKey); err != nil {
			return runErrorf("--tls-cert %s / --tls-key %s: %v", l.TLSCert, l.TLSKey, err)
		}
	}
	return nil
}

// Run is `darktime server`: it checks cfg and l, listens, serves until
// ctx ends, then shuts down gracefully (subscribers are told to
// reconnect) within l.ShutdownTimeout. Without a Registerer in cfg,
// /metrics also serves the Go and process collectors. Errors of the
// input — flags, files, addresses — wrap ErrConfig.
func Run(ctx context.Context, cfg Config, l Listen) error {
	if l.Addr == "" {
		l.Addr = DefaultListen
	}
	cfg.SeparateAdmin = cfg.SeparateAdmin || l.Admin != ""
	if err := l.check(cfg); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	if cfg.Registerer == nil && cfg.Gatherer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	ln, al, err := l.listen()
	if err != nil {
		return err
	}
	if host, _, _ := net.SplitHostPort(ln.Addr().String()); cfg.PublishToken == "" && !net.ParseIP(host).IsLoopback() {
		cfg.Logger.Warn("no --publish-token: publishing is refused to every client that is not on loopback", "listen", ln.Addr().String())
	}
	srv, err := New(cfg)
	if err != nil {
		_ = ln.Close()
		if al != nil {
			_ = al.Close()
		}
		return err
	}
	return srv.run(ctx, l, ln, al)
}

// listen opens the public listener and, with l.Admin, the admin one.
func (l Listen) listen() (ln, al net.Listener, err error) {
	if ln, err = net.Listen("tcp", l.Addr); err != nil {
		return nil, nil, runErrorf("listen on %s: %v", l.Addr, err)
	}
	if l.Admin != "" {
		if al, err = net.Listen("tcp", l.Admin); err != nil {
			_ = ln.Close()
			return nil, nil, runErrorf("--admin-listen %s: %v", l.Admin, err)
		}
	}
	return ln, al, nil
}

// run serves on ln (and al) until ctx ends, then shuts down.
func (s *Server) run(ctx context.Context, l Listen, ln, al net.Listener) error {
	log := s.log
	if l.Demo {
		go s.RunDemoPublisher(ctx, "demo", time.Second)
	}
	scheme := "http"
	if l.TLSCert != "" {
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	log.Info("darktime server listening", "url", base, "broker", s.Stats().Broker, "node", s.Stats().Node)
	if l.Demo && l.Banner != nil {
		fmt.Fprintf(l.Banner, "\n  demo page:   %s/\n  subscribe:   curl -N %s/sub/demo\n  publish:     curl -d 'hello' '%s/pub?id=demo'\n  counters:    curl %s/stats\n\n", base, base, base, base)
	}
	errc := make(chan error, 2)
	go func() { errc <- s.Serve(ln, l.TLSCert, l.TLSKey) }()
	serving := 1
	if al != nil {
		log.Info("admin listening", "url", "http://"+al.Addr().String(), "serves", "/stats /metrics /queue/stats /queue/dead /healthz")
		serving++
		go func() { errc <- s.ServeAdmin(al) }()
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: telling subscribers to reconnect", "deadline", l.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), l.ShutdownTimeout)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		return err
	}
	for range serving {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	st := s.Stats()
	log.Info("stopped", "published", st.Totals.Published, "written", st.Totals.Written, "dropped", st.Totals.Dropped, "balance", st.Balance)
	return nil
}
