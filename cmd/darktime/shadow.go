package main

import (
	"context"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/darktime/darktime/shadow"
)

func init() { subcommands = append(subcommands, newShadowCmd) }

func newShadowCmd() *cobra.Command {
	var (
		configFile, listen, admin, primary, candidate, baseline, mode, percent, keySpec, ledgerFile, logLevel string
		adminToken, tlsCert, tlsKey                                                                           string
		shutdownWait                                                                                          time.Duration
		mirrorUnsafe                                                                                          bool
		trustedProxies                                                                                        []string
	)
	cmd := &cobra.Command{
		Use:   "shadow",
		Short: "Proxy a realtime service and divert or mirror a share of users to a candidate",
		Long: `Run the shadow proxy: sticky per-user selection into 10,000 buckets; divert
(canary) or mirror (dark launch) per route; mirrored event streams reconciled
in a +1/-1 ledger (GET /_darktime/ledger on --admin, and --ledger-file on exit).

  darktime shadow --config shadow.yaml
  darktime shadow --primary http://127.0.0.1:8080 --candidate http://127.0.0.1:8081 --mode mirror --percent 10

Flags override the config file. SIGHUP reloads the file; a bad file is refused
and the running config stays. Beyond loopback, --admin needs --admin-token (or
` + shadow.AdminTokenEnv + `); --tls-cert/--tls-key serve HTTPS with HTTP/2.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(logLevel)
			if err != nil {
				return err
			}
			load := func() (shadow.Config, error) {
				var cfg shadow.Config
				if configFile != "" {
					_, allowSpecial := inputLimits(cmd)
					if cfg, err = shadow.LoadConfigFileContext(cmd.Context(), configFile, allowSpecial); err != nil {
						return cfg, err
					}
				}
				f := cmd.Flags()
				set := func(name string, dst *string, v string) {
					if f.Changed(name) || *dst == "" {
						*dst = v
					}
				}
				set("listen", &cfg.Listen, listen)
				set("admin", &cfg.Admin, admin)
				set("primary", &cfg.Primary, primary)
				set("candidate", &cfg.Candidate, candidate)
				set("baseline", &cfg.Baseline, baseline)
				set("ledger-file", &cfg.Ledger.File, ledgerFile)
				if f.Changed("mode") || configFile == "" {
					cfg.Mode = shadow.Mode(mode)
				}
				if f.Changed("percent") || configFile == "" {
					if cfg.Percent, err = shadow.ParsePercent(percent); err != nil {
						return cfg, err
					}
				}
				if f.Changed("mirror-unsafe") {
					cfg.MirrorUnsafe = mirrorUnsafe
				}
				if f.Changed("trusted-proxy") {
					cfg.TrustedProxies = trustedProxies
				}
				if f.Changed("key") || configFile == "" {
					from, name, _ := strings.Cut(keySpec, ":")
					cfg.Key.From, cfg.Key.Name = from, name
				}
				cfg.AdminToken = adminToken
				if !f.Changed("admin-token") {
					cfg.AdminToken = os.Getenv(shadow.AdminTokenEnv)
				}
				return cfg, cfg.Validate()
			}
			if shutdownWait < 0 {
				return usagef("--shutdown-timeout %v is negative", shutdownWait)
			}
			cfg, err := load()
			if err != nil {
				return usagef("%v", err)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			cfg.Logger, cfg.Registerer, cfg.Gatherer = log, reg, reg
			// The TLS pair is read through the CLI's bounds (README: Input
			// limits) and loaded by shadow.Listen before "listening".
			var opts shadow.ServeOptions
			if (tlsCert == "") != (tlsKey == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			if tlsCert != "" {
				if opts.TLSCert, err = readYAMLFile(cmd, tlsCert); err != nil {
					return usagef("--tls-cert: %v", err)
				}
				if opts.TLSKey, err = readYAMLFile(cmd, tlsKey); err != nil {
					return usagef("--tls-key: %v", err)
				}
			}
			p, err := shadow.New(cfg)
			if err != nil {
				return usagef("%v", err)
			}
			fe, err := shadow.Listen(p, opts)
			if err != nil {
				_ = p.Shutdown(context.Background())
				return usagef("%v", err)
			}
			log.Info("darktime shadow listening", "url", fe.URL(), "admin", fe.AdminURL(), "admin_token", cfg.AdminToken != "",
				"primary", cfg.Primary, "candidate", cfg.Candidate, "mode", cfg.Mode, "percent", cfg.Percent)

			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			ctx := cmd.Context()
		loop:
			for {
				select {
				case err := <-fe.Err():
					_ = fe.Shutdown(context.Background())
					return err
				case <-hup:
					next, err := load()
					if err == nil {
						err = p.Reload(next)
					}
					if err != nil {
						log.Error("reload refused; the running config stays", "err", err)
					} else {
						log.Info("reloaded", "file", configFile)
					}
				case <-ctx.Done():
					break loop
				}
			}
			sctx, cancel := context.WithTimeout(context.Background(), shutdownWait)
			defer cancel()
			if err := fe.Shutdown(sctx); err != nil { // ends the proxied streams, writes the ledger
				return err
			}
			tot := p.Report()
			for _, t := range tot.Targets {
				log.Info("ledger", "target", t.Name, "primary", t.Totals.Primary, "candidate", t.Totals.Candidate,
					"missing", t.Totals.Missing, "extra", t.Totals.Extra, "late", t.Totals.Late, "reordered", t.Totals.Reordered)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "", "YAML config file (see shadow/README.md); SIGHUP reloads it")
	f.StringVar(&listen, "listen", shadow.DefaultListen, "address of the proxy")
	f.StringVar(&admin, "admin", shadow.DefaultAdmin, "address of the admin API (ledger, config, percent, metrics); beyond loopback it needs --admin-token")
	f.StringVar(&adminToken, "admin-token", "", "bearer token every admin endpoint but healthz requires (env "+shadow.AdminTokenEnv+"); required when --admin is not on loopback")
	f.StringVar(&tlsCert, "tls-cert", "", "TLS certificate file: the proxy serves HTTPS with HTTP/2")
	f.StringVar(&tlsKey, "tls-key", "", "TLS key file")
	f.StringVar(&primary, "primary", "", "base URL of the primary (production) service")
	f.StringVar(&candidate, "candidate", "", "base URL of the candidate (new code)")
	f.StringVar(&baseline, "baseline", "", "base URL of a second primary, mirrored to measure noise")
	f.StringVar(&mode, "mode", "mirror", "divert or mirror (or off) for selected users")
	f.StringVar(&percent, "percent", "0", "share of users selected, 0-100 with two decimals")
	f.StringVar(&keySpec, "key", "ip", "user key: ip, cookie:NAME, header:NAME or query:NAME")
	f.BoolVar(&mirrorUnsafe, "mirror-unsafe", false, "also mirror POST/PUT/PATCH/DELETE (publishes) where no route says otherwise")
	f.StringVar(&ledgerFile, "ledger-file", "", "write the ledger JSON here on exit")
	f.StringSliceVar(&trustedProxies, "trusted-proxy", nil, "proxy address or CIDR whose X-Forwarded-For/Forwarded chain is passed on (repeat); from others only the peer's address is sent")
	f.DurationVar(&shutdownWait, "shutdown-timeout", 10*time.Second, "how long shutdown waits for mirrors to settle")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}
