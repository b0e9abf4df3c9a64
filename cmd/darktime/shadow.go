package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/darktime/darktime/shadow"
)

func init() { subcommands = append(subcommands, newShadowCmd) }

// shadowOptions are the flags of `darktime shadow`.
type shadowOptions struct {
	flags           shadow.Flags
	run             shadow.RunOptions
	logLevel        string
	tlsCert, tlsKey string
}

func newShadowCmd() *cobra.Command {
	var o shadowOptions
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
			log, err := newLogger(o.logLevel)
			if err != nil {
				return err
			}
			// go-redis logs each failed dial to stderr; with a fleet whose
			// Redis is down that is a line a second. The proxy counts and
			// logs the outage itself, so the client's go to debug.
			redis.SetLogger(redisLog{log})
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			f := &o.flags
			_, f.AllowSpecial = inputLimits(cmd)
			f.Changed = cmd.Flags().Changed
			o.run.Reload, o.run.ConfigFile = hup, f.ConfigFile
			// The TLS pair is read through the CLI's bounds (README: Input
			// limits) and loaded by shadow.Listen before "listening".
			if (o.tlsCert == "") != (o.tlsKey == "") {
				return usagef("--tls-cert and --tls-key go together")
			}
			if o.tlsCert != "" {
				if o.run.Serve.TLSCert, err = readYAMLFile(cmd, o.tlsCert); err != nil {
					return usagef("--tls-cert: %v", err)
				}
				if o.run.Serve.TLSKey, err = readYAMLFile(cmd, o.tlsKey); err != nil {
					return usagef("--tls-key: %v", err)
				}
			}
			o.run.Load = func() (shadow.Config, error) {
				cfg, err := f.Load(cmd.Context())
				cfg.Logger = log
				return cfg, err
			}
			return usageIf(shadow.Run(cmd.Context(), o.run), shadow.ErrInvalidConfig)
		},
	}
	o.bind(cmd.Flags())
	return cmd
}

func (o *shadowOptions) bind(f *pflag.FlagSet) {
	s := &o.flags
	f.StringVar(&s.ConfigFile, "config", "", "YAML config file (see shadow/README.md); SIGHUP reloads it")
	f.StringVar(&s.Listen, "listen", shadow.DefaultListen, "address of the proxy")
	f.StringVar(&s.Admin, "admin", shadow.DefaultAdmin, "address of the admin API (ledger, config, percent, metrics)")
	f.StringVar(&s.Primary, "primary", "", "base URL of the primary (production) service")
	f.StringVar(&s.Candidate, "candidate", "", "base URL of the candidate (new code)")
	f.StringVar(&s.Baseline, "baseline", "", "base URL of a second primary, mirrored to measure noise")
	f.StringVar(&s.Mode, "mode", "mirror", "divert or mirror (or off) for selected users")
	f.StringVar(&s.Percent, "percent", "0", "share of users selected, 0-100 with two decimals")
	f.StringVar(&s.Key, "key", string(shadow.KeyIP), "user key: ip, cookie:NAME, header:NAME or query:NAME")
	f.BoolVar(&s.MirrorUnsafe, "mirror-unsafe", false, "also mirror POST/PUT/PATCH/DELETE (publishes) where no route says otherwise")
	f.StringVar(&s.LedgerFile, "ledger-file", "", "write the ledger JSON here on exit")
	f.StringVar(&s.Redis, "redis", "", "Redis URL of a fleet of proxy instances sharing steps, rollbacks and evidence (redis://host:6379/0)")
	f.StringVar(&s.Fleet, "fleet", "", "name of the fleet in that Redis (default \"default\")")
	f.StringSliceVar(&s.TrustedProxies, "trusted-proxy", nil, "proxy address or CIDR whose X-Forwarded-For/Forwarded chain is passed on (repeat); from others only the peer's address is sent")
	f.StringVar(&s.AdminToken, "admin-token", "", "bearer token every admin endpoint but /_darktime/healthz requires (env "+shadow.AdminTokenEnv+"); needed when --admin is not on loopback")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file: the proxy's listener (HTTP/2) and the admin API serve HTTPS")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS key file")
	f.DurationVar(&o.run.ShutdownTimeout, "shutdown-timeout", shadow.DefaultShutdownTimeout, "how long shutdown waits for mirrors to settle")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
}

// redisLog is go-redis's logger on the CLI's, at debug level.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
