package shadow

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// ServeOptions are what Listen needs beyond the Config.
type ServeOptions struct {
	// TLSCert and TLSKey, PEM, both or neither: the proxy's listener then
	// serves HTTPS, with HTTP/2 (a browser opens at most six HTTP/1.1
	// connections per origin; over HTTP/2 its event streams share one).
	// The admin API is served over TLS with the same pair (its token must
	// not cross a network in clear).
	TLSCert, TLSKey []byte
}

// Frontend is a Proxy served on its listeners, as darktime shadow runs
// it: the proxy on Config.Listen and the admin API on Config.Admin. Create
// it with Listen, stop it with Shutdown.
type Frontend struct {
	p        *Proxy
	hs, as   *http.Server
	l, al    net.Listener
	tls      bool
	errc     chan error
	wg       sync.WaitGroup
	shutOnce sync.Once
	shutErr  error
}

// Listen checks what can be checked before anything listens — the admin
// listener needs a token unless it is on loopback (CheckAdminListener),
// the TLS pair must load — then listens on Config.Listen and Config.Admin
// (DefaultListen, DefaultAdmin when empty), tells the proxy its own
// listener (SetListeners: a target that is the proxy itself is refused)
// and starts serving. Every error before serving wraps ErrInvalidConfig
// (bad input) except a failure to listen.
func Listen(p *Proxy, opts ServeOptions) (*Frontend, error) {
	cfg := p.Config()
	listen, admin := cfg.Listen, cfg.Admin
	if listen == "" {
		listen = DefaultListen
	}
	if admin == "" {
		admin = DefaultAdmin
	}
	if err := CheckAdminListener(admin, cfg.AdminToken); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	var tlsConfig *tls.Config
	if len(opts.TLSCert) > 0 || len(opts.TLSKey) > 0 {
		if len(opts.TLSCert) == 0 || len(opts.TLSKey) == 0 {
			return nil, fmt.Errorf("%w: a TLS certificate and its key go together", ErrInvalidConfig)
		}
		pair, err := tls.X509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("%w: the TLS certificate and key (--tls-cert, --tls-key): %w", ErrInvalidConfig, err)
		}
		// ServeTLS offers h2 and http/1.1 (ALPN) on this config.
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair}}
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", listen, err)
	}
	al, err := net.Listen("tcp", admin)
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("admin listen on %s: %w", admin, err)
	}
	fail := func(err error) (*Frontend, error) {
		_, _ = l.Close(), al.Close()
		return nil, err
	}
	// A name is judged again by the address it was bound to.
	if err := CheckAdminListener(al.Addr().String(), cfg.AdminToken); err != nil {
		return fail(fmt.Errorf("%w: --admin %s: %w", ErrInvalidConfig, admin, err))
	}
	// A target that is this listener would send every request round
	// again; reloads are checked against it too.
	if err := p.SetListeners(l.Addr()); err != nil {
		return fail(err)
	}
	f := &Frontend{
		p:    p,
		hs:   &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig},
		as:   &http.Server{Handler: p.AdminHandler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig.Clone()},
		l:    l,
		al:   al,
		tls:  tlsConfig != nil,
		errc: make(chan error, 2),
	}
	serve := func(run func() error) {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := run(); !errors.Is(err, http.ErrServerClosed) {
				f.errc <- err
			}
		}()
	}
	serve(func() error {
		if f.tls {
			return f.hs.ServeTLS(l, "", "")
		}
		return f.hs.Serve(l)
	})
	serve(func() error {
		if f.tls {
			return f.as.ServeTLS(al, "", "")
		}
		return f.as.Serve(al)
	})
	return f, nil
}

// URL is the proxy's base URL (https with TLS).
func (f *Frontend) URL() string {
	if f.tls {
		return "https://" + f.l.Addr().String()
	}
	return "http://" + f.l.Addr().String()
}

// AdminURL is the admin API's base URL.
func (f *Frontend) AdminURL() string {
	if f.tls {
		return "https://" + f.al.Addr().String()
	}
	return "http://" + f.al.Addr().String()
}

// Err delivers an error if a listener stops serving before Shutdown.
func (f *Frontend) Err() <-chan error { return f.errc }

// Shutdown shuts the proxy down (ending proxied streams and writing the
// ledger, Proxy.Shutdown), then both servers, waiting until ctx ends. It
// is safe to call more than once.
func (f *Frontend) Shutdown(ctx context.Context) error {
	f.shutOnce.Do(func() {
		err := f.p.Shutdown(ctx)
		for _, hs := range []*http.Server{f.hs, f.as} {
			if e := hs.Shutdown(ctx); e != nil {
				_ = hs.Close()
			}
		}
		f.wg.Wait()
		f.shutErr = err
	})
	return f.shutErr
}
