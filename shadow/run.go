package shadow

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Defaults of `darktime shadow` (RunOptions and its flags): the proxy's
// and the admin API's listen addresses, the shutdown wait.
const (
	DefaultListen          = "127.0.0.1:9090"
	DefaultAdmin           = "127.0.0.1:9092"
	DefaultShutdownTimeout = 10 * time.Second
)

// RunOptions say how Run serves a Proxy.
type RunOptions struct {
	// Load returns the config to run (Config.Listen, DefaultListen when
	// empty; Config.Admin, DefaultAdmin), and again at every Reload.
	Load func() (Config, error)
	// Reload, when it receives, loads the config again and applies it
	// (Proxy.Reload); one that fails is logged and the running config
	// stays (the CLI sends SIGHUP here).
	Reload <-chan os.Signal
	// ConfigFile names what Load reads, for the log.
	ConfigFile string
	// ShutdownTimeout bounds the shutdown once ctx ends: mirrors settle,
	// the ledger is written (0: do not wait).
	ShutdownTimeout time.Duration
	// Serve is how the listeners serve (TLS on the proxy's).
	Serve ServeOptions
}

// runError is an error of Run's input the user fixes: it wraps
// ErrInvalidConfig and says only what is wrong.
type runError struct{ err error }

func (e runError) Error() string   { return e.err.Error() }
func (e runError) Unwrap() []error { return []error{ErrInvalidConfig, e.err} }

// Run is `darktime shadow`: it loads the config, listens on Listen and
// Admin, proxies until ctx ends (reloading on o.Reload), then shuts down,
// writes the ledger and logs its totals. Without a Registerer in the
// config, /metrics also serves the Go and process collectors. Errors of
// the input (config, addresses) wrap ErrInvalidConfig.
func Run(ctx context.Context, o RunOptions) error {
	if o.ShutdownTimeout < 0 {
		return runError{fmt.Errorf("--shutdown-timeout %v is negative", o.ShutdownTimeout)}
	}
	cfg, err := o.Load()
	if err != nil {
		return runError{err}
	}
	cfg.Listen, cfg.Admin = cmpOr(cfg.Listen, DefaultListen), cmpOr(cfg.Admin, DefaultAdmin)
	if cfg.Registerer == nil && cfg.Gatherer == nil {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	p, err := New(cfg)
	if err != nil {
		return runError{err}
	}
	fe, err := Listen(p, o.Serve)
	if err != nil {
		_ = p.Shutdown(context.Background())
		return runError{err}
	}
	return p.serve(ctx, o, fe)
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// serve runs the frontend until ctx ends, reloading on o.Reload, then
// shuts it down (the ledger is written).
func (p *Proxy) serve(ctx context.Context, o RunOptions, fe *Frontend) error {
	log := p.log
	cfg := p.Config()
	log.Info("darktime shadow listening", "url", fe.URL(), "admin", fe.AdminURL(),
		"primary", cfg.Primary, "candidate", cfg.Candidate, "mode", cfg.Mode, "percent", cfg.Percent)
loop:
	for {
		select {
		case err := <-fe.Err():
			_ = fe.Shutdown(context.Background())
			return err
		case <-o.Reload:
			next, err := o.Load()
			if err == nil {
				err = p.Reload(next)
			}
			if err == nil {
				err = p.shareChanged() // a fleet takes the file's shares
			}
			if err != nil {
				log.Error("reload refused; the running config stays", "err", err)
			} else {
				log.Info("reloaded", "file", o.ConfigFile)
			}
		case <-ctx.Done():
			break loop
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	if err := fe.Shutdown(sctx); err != nil { // ends the proxied streams, writes the ledger
		return err
	}
	for _, t := range p.Report().Targets {
		log.Info("ledger", "target", t.Name, "primary", t.Totals.Primary, "candidate", t.Totals.Candidate,
			"missing", t.Totals.Missing, "extra", t.Totals.Extra, "late", t.Totals.Late, "reordered", t.Totals.Reordered)
	}
	return nil
}
