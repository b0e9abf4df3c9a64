package main

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/darktime/darktime/internal/fdlimit"
	"github.com/darktime/darktime/server/auth"
	"github.com/darktime/darktime/swarm"
	"github.com/darktime/darktime/swarm/live"
)

func init() { subcommands = append(subcommands, newSwarmCmd) }

// swarmOptions are the flags of `darktime swarm`.
type swarmOptions struct {
	cfg                  swarm.Config
	text                 swarm.Flags
	token                swarm.TokenConfig
	profile, profileFile string
	launch               swarm.Launch
	quiet                bool
	remoteWrite          live.Flags
}

func newSwarmCmd() *cobra.Command {
	var o swarmOptions
	cmd := &cobra.Command{
		Use:   "swarm",
		Short: "Drive an SSE server with simulated EventSource clients and publishers; measure every delivery",
		Long: `Holds --clients browser-like EventSource clients over --channels channels and
publishes --rate events/s (vegeta pacing) for --duration, then writes one JSON
result (swarm/RESULTS.md) with latency histograms, a per-second series and a
per-channel +1/-1 ledger of what was owed, received, lost and duplicated.
--profile darktime|nchan picks the target's URLs; the --subscribe/--publish-*
flags override them (templates with {target} {channel} {channels} {client}
{seq} {ts} {payload}). --phase splits the publishing into stretches with rates
of their own (one may spike a single hot channel); --slowdown turns clients into
slow readers. --remote-write URL sends the progress line's numbers, with native
histograms of the latencies, to Prometheus as the run goes (README "Live
metrics"). Every run stops by itself; Ctrl-C stops early and still writes
results.`,
		Example: `  darktime swarm --profile darktime --target http://127.0.0.1:8080 --clients 1000 --channels 10 \
    --distribution zipf --rate 100 --duration 30s --out results/run.json --hdr-log results/run.hlog`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd) },
	}
	o.templateFlags(cmd.Flags())
	o.runFlags(cmd.Flags())
	cmd.AddCommand(newSwarmAgentCmd(), newSwarmWorkerCmd())
	return cmd
}

// config is the run the flags describe.
func (o *swarmOptions) config(cmd *cobra.Command) (swarm.Config, error) {
	cfg := o.cfg
	var err error
	if cfg.Profile, err = swarm.LoadProfile(o.profile, o.profileFile, yamlReader(cmd)); err != nil {
		return cfg, usageError{err}
	}
	if o.token.SecretEnv != "" || o.token.KeyFile != "" {
		cfg.Token = &o.token
	}
	if err := o.text.Apply(&cfg); err != nil {
		return cfg, usageError{err}
	}
	cfg.Logger = swarm.NewLogger(cmd.ErrOrStderr(), o.quiet)
	if !o.quiet {
		cfg.Progress = cmd.ErrOrStderr()
	}
	if cfg.RunID == "" {
		cfg.RunID = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	return cfg, nil
}

func (o *swarmOptions) run(cmd *cobra.Command) error {
	o.launch.Summary, o.launch.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
	cfg, err := o.config(cmd)
	if err != nil {
		return err
	}
	rw, err := o.remoteWrite.Config(cfg.Logger)
	if err != nil {
		return usageError{err}
	}
	if rw != nil {
		o.launch.Watch = rw.Watch()
		if o.launch.Live, err = rw.Spec(); err != nil {
			return err
		}
	}
	if err := o.launch.Check(); err != nil {
		return usageError{err}
	}
	fdlimit.Raise()
	return usageIf(o.launch.Run(cmd.Context(), cfg), swarm.ErrConfig, swarm.ErrTemplate)
}

func (o *swarmOptions) templateFlags(f *pflag.FlagSet) {
	t, tk := &o.text, &o.token
	f.StringArrayVar(&o.cfg.Targets, "target", []string{swarm.DefaultTarget}, "server base URL, {target} in the templates; repeat for several nodes sharing a broker (clients and publishes round robin)")
	f.StringVar(&o.profile, "profile", "darktime", "target profile: "+strings.Join(swarm.ProfileNames(), ", "))
	f.StringVar(&o.profileFile, "profile-file", "", "read the profile from a JSON `FILE` (fields as in swarm.Profile)")
	f.StringVar(&t.Subscribe, "subscribe", "", "subscribe URL template (overrides the profile)")
	f.StringVar(&t.Publish.Method, "publish-method", "", "publish method (overrides the profile)")
	f.StringVar(&t.Publish.URL, "publish-url", "", "publish URL template (overrides the profile)")
	f.StringArrayVar(&t.Publish.Headers, "publish-header", nil, "publish header template \"Name: value\" (repeatable; replaces the profile's)")
	f.StringArrayVar(&t.SubscribeHeaders, "subscribe-header", nil, "subscribe header template \"Name: value\" with {client} and {token} (repeatable; replaces the profile's)")
	f.StringVar(&tk.SecretEnv, "token-secret-env", "", "mint {token} per client (sub = client index, channels = its channels) with the HMAC secret in this environment variable; without {token} in a template it goes in Authorization: Bearer")
	f.StringVar(&tk.KeyFile, "token-key-file", "", "mint {token} with this PEM private key (RS*/PS*/ES*/EdDSA) or HMAC secret file")
	f.StringVar(&tk.Algorithm, "token-alg", "", "token signing algorithm (default the key's: HS256, RS256, ES*, EdDSA)")
	f.DurationVar(&tk.TTL, "token-ttl", auth.DefaultTTL, "token lifetime; the client renews at once when the server ends a stream for expiry (darktime.renew)")
	f.StringVar(&tk.Issuer, "token-issuer", "", "iss claim of minted tokens")
	f.StringVar(&tk.Audience, "token-audience", "", "aud claim of minted tokens")
	f.StringArrayVar(&t.TokenClaims, "token-claim", nil, "extra claim NAME=VALUE in minted tokens (repeatable)")
	f.StringVar(&t.Publish.Body, "publish-body", "", "publish body template (overrides the profile)")
	f.IntVar(&t.Publish.Batch, "publish-batch", 0, "events per publish request: the body template once per event, joined by --publish-batch-separator into --publish-batch-body (overrides the profile)")
	f.StringVar(&t.Publish.BatchBody, "publish-batch-body", "", "body of a batch, {events} where the events go (default \"[{events}]\")")
	f.StringVar(&t.Publish.BatchSeparator, "publish-batch-separator", "", "text between the events of a batch (default \",\")")
	f.StringVar(&t.Extract.Seq, "extract-seq", "", "text before the seq in received data (overrides the profile)")
	f.StringVar(&t.Extract.TS, "extract-ts", "", "text before the timestamp in received data (overrides the profile)")
	f.StringVar(&t.Extract.Channel, "extract-channel", "", "text before the channel name in received data (overrides the profile)")
	f.BoolVar(&t.Extract.JSONString, "extract-json-string", false, "the received data carries the published body as an escaped JSON string (a JSON envelope): match the markers with its escapes undone")
}

func (o *swarmOptions) runFlags(f *pflag.FlagSet) {
	c, t := &o.cfg, &o.text
	f.IntVar(&c.Clients, "clients", swarm.DefaultClients, "EventSource clients")
	f.IntVar(&c.Channels, "channels", swarm.DefaultChannels, "channels")
	f.StringVar(&t.Distribution, "distribution", "uniform", "channel assignment: uniform, zipf[:S], one, several[:N]")
	f.StringVar(&c.ChannelPrefix, "channel-prefix", "", "channel name prefix (default random)")
	f.Float64Var(&c.Ramp, "ramp", swarm.DefaultRamp, "clients connected per second")
	f.IntVar(&c.Sources, "sources", 0, "loopback source addresses 127.0.0.2.. (default one per 20,000 clients)")
	f.Float64Var(&c.Rate, "rate", swarm.DefaultRate, "publish rate, events/s over all channels")
	f.StringVar(&t.Pacing, "pacing", "constant", "constant, linear:SLOPE (events/s per s) or sine:PERIOD:AMPLITUDE")
	f.BoolVar(&c.MaxRate, "max-rate", false, "publish as fast as the target answers from --publishers requests in flight, until --events (no --rate)")
	f.IntVar(&c.Publishers, "publishers", 0, "publish requests in flight at most (default 10,000; with --max-rate: exactly)")
	f.Int64Var(&c.Events, "events", 0, "stop publishing after this many events (default: at the end of --duration)")
	f.DurationVar(&c.RetryUnavailable, "retry-unavailable", 0, "send a publish answered 503 again after this pause (0: a 503 is a failed publish)")
	f.IntVar(&c.Size, "size", swarm.DefaultSize, "event body size in bytes")
	f.DurationVar(&c.Duration, "duration", swarm.DefaultDuration, "how long to publish")
	f.DurationVar(&c.Settle, "settle", swarm.DefaultSettle, "pause between connecting and publishing")
	f.DurationVar(&c.Drain, "drain", swarm.DefaultDrain, "wait for deliveries after the last publish")
	f.StringVar(&t.Churn, "churn", "none", "connection lifetime: none, fixed:D, exp:MEAN, uniform:MIN-MAX")
	f.DurationSliceVar(&c.Storms, "storm", nil, "cut every connection at this offset into publishing (repeatable)")
	f.StringArrayVar(&t.Phases, "phase", nil, "publish in phases, one after another, instead of --duration: NAME:DURATION[:RATE][:hot=CHANNEL] (repeatable; hot sends RATE to that channel on top of --rate)")
	f.StringArrayVar(&t.Slowdowns, "slowdown", nil, "AT:CLIENTS:READ_DELAY: from AT into publishing, CLIENTS clients wait READ_DELAY before every read (repeatable)")
	f.DurationVar(&c.DefaultRetry, "retry", swarm.DefaultRetry, "reconnect delay until the server sends a retry hint")
	f.DurationVar(&c.LedgerWindow, "ledger-window", swarm.DefaultLedgerWindow, "ledger time window (0: one account per channel)")
	f.Uint64Var(&c.Seed, "seed", 0, "seed for channel assignment (default random)")
	l := &o.launch
	f.IntVar(&l.Procs, "procs", 1, "worker processes, each with a slice of the channels and clients; results merged")
	f.IntVar(&l.Agents, "agents", 0, "coordinate N `darktime swarm agent`s through --redis, one part each; results merged")
	f.StringVar(&l.Coordination.RedisURL, "redis", "", "Redis `URL` shared with the agents (with --agents)")
	f.StringVar(&l.Coordination.Prefix, "redis-prefix", swarm.DefaultAgentPrefix, "prefix of the agents' Redis keys")
	f.DurationVar(&l.Coordination.JoinTimeout, "join-timeout", swarm.DefaultJoinTimeout, "how long to wait for the agents to join")
	f.StringVar(&c.RunID, "run-id", "", "run id shared by the parts of one run (default generated)")
	f.StringVar(&l.Out, "out", "", "write the JSON result to `FILE` (required)")
	f.StringVar(&l.HdrLog, "hdr-log", "", "write per-second histograms in HdrHistogram interval-log format to `FILE`")
	f.BoolVar(&o.quiet, "quiet", false, "no progress lines, and only warnings and errors logged")
	addRemoteWriteFlags(f, &o.remoteWrite)
}

func newSwarmAgentCmd() *cobra.Command {
	var (
		agent swarm.Agent
		quiet bool
		rwf   live.Flags
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Wait for swarm runs posted to Redis by `darktime swarm --agents N` and run a part of each",
		Long: `Joins runs that a coordinator (darktime swarm --agents N --redis URL) posts to
Redis, starts at the coordinator's common start time, runs its part (every N-th
channel with its clients and its share of the rate, as --procs does) and pushes
its result back. Serves one run after another until interrupted.`,
		Example: `  darktime swarm agent --redis redis://10.0.0.5:6379/0 --name loadgen-1`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fdlimit.Raise()
			agent.Logger = swarm.NewLogger(cmd.ErrOrStderr(), quiet)
			if !quiet {
				agent.Progress = cmd.ErrOrStderr()
			}
			rw, err := rwf.Config(agent.Logger)
			if err != nil {
				return usageError{err}
			}
			if rw != nil {
				agent.Watch = rw.AgentWatch(&agent)
			}
			if err := agent.Serve(cmd.Context()); err != nil && !errors.Is(err, context.Canceled) {
				return usageIf(err, swarm.ErrConfig)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&agent.RedisURL, "redis", "", "Redis `URL` shared with the coordinator (required)")
	f.StringVar(&agent.Prefix, "redis-prefix", swarm.DefaultAgentPrefix, "prefix of the swarm's Redis keys")
	f.StringVar(&agent.Name, "name", "", "agent name shown by the coordinator (default host-pid)")
	f.IntVar(&agent.Runs, "runs", 0, "exit after this many runs (0: serve until interrupted)")
	f.BoolVar(&quiet, "quiet", false, "no progress lines, and only warnings and errors logged")
	addRemoteWriteFlags(f, &rwf)
	return cmd
}

// newSwarmWorkerCmd is the receiving end of --procs and clients.procs:
// one part of a run, handed over as a swarm.RunSpec (swarm.WorkerArgs).
func newSwarmWorkerCmd() *cobra.Command {
	var specFile string
	cmd := &cobra.Command{
		Use:    "worker --spec FILE|-",
		Short:  "Run one part of a swarm run described by a JSON run spec (started by --procs and clients.procs)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := cmd.InOrStdin()
			if specFile != "-" {
				data, err := readYAMLFile(cmd, specFile) // bounded as the YAML files: 1 MiB
				if err != nil {
					return usagef("--spec: %v", err)
				}
				in = strings.NewReader(string(data))
			}
			spec, err := swarm.ReadSpec(in)
			if err != nil {
				return usageError{err}
			}
			var watch swarm.Watch
			if len(spec.Live) > 0 {
				rw, err := live.FromSpec(spec.Live, swarm.NewLogger(cmd.ErrOrStderr(), spec.Quiet).With("part", spec.Part.Index))
				if err != nil {
					return usageError{err}
				}
				watch = rw.Watch()
			}
			if err := swarm.RunWorkerWatched(cmd.Context(), spec, cmd.ErrOrStderr(), watch); err != nil && !errors.Is(err, context.Canceled) {
				return usageIf(err, swarm.ErrSpec, swarm.ErrConfig, swarm.ErrTemplate)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&specFile, "spec", "-", "the run spec (JSON, swarm.RunSpec): a `FILE`, or - for stdin")
	return cmd
}
