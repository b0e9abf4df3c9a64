package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/darktime/darktime/swarm"
)

func init() { subcommands = append(subcommands, newSwarmCmd) }

func newSwarmCmd() *cobra.Command {
	var (
		cfg                                swarm.Config
		profile, profileFile               string
		distribution, pacing, churn, part  string
		storms                             []time.Duration
		phases, slowdowns                  []string
		procs, agents                      int
		targets                            []string
		redisURL, redisPrefix              string
		joinTimeout                        time.Duration
		out, hdrLog                        string
		quiet                              bool
		subURL, pubMethod, pubURL, pubBody string
		pubHeaders                         []string
		extractSeq, extractTS, extractChan string
		extractJSONString                  bool
		subHeaders, tokenClaims            []string
		token                              swarm.TokenConfig
	)
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
slow readers. Every run stops by itself; Ctrl-C stops early and still writes
results.`,
		Example: `  darktime swarm --profile darktime --target http://127.0.0.1:8080 --clients 1000 --channels 10 \
    --distribution zipf --rate 100 --duration 30s --out results/run.json --hdr-log results/run.hlog`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if joinTimeout < 0 {
				return usagef("--join-timeout %v is negative", joinTimeout)
			}
			if cfg.Profile, err = swarmProfile(cmd, profile, profileFile); err != nil {
				return err
			}
			p := &cfg.Profile
			setIf := func(dst *string, v string) {
				if v != "" {
					*dst = v
				}
			}
			setIf(&p.Subscribe, subURL)
			setIf(&p.Publish.Method, pubMethod)
			setIf(&p.Publish.URL, pubURL)
			setIf(&p.Publish.Body, pubBody)
			setIf(&p.Extract.Seq, extractSeq)
			setIf(&p.Extract.TS, extractTS)
			setIf(&p.Extract.Channel, extractChan)
			if extractJSONString {
				p.Extract.JSONString = true
			}
			if len(pubHeaders) > 0 {
				p.Publish.Headers = pubHeaders
			}
			if len(subHeaders) > 0 {
				p.SubscribeHeaders = subHeaders
			}
			if token.SecretEnv != "" || token.KeyFile != "" {
				for _, kv := range tokenClaims {
					k, v, ok := strings.Cut(kv, "=")
					if !ok || k == "" {
						return usagef("--token-claim %q: want NAME=VALUE", kv)
					}
					if token.Claims == nil {
						token.Claims = map[string]string{}
					}
					token.Claims[k] = v
				}
				cfg.Token = &token
			}
			if cfg.Distribution, err = swarm.ParseDistribution(distribution); err != nil {
				return usageError{err}
			}
			if cfg.Pacing, err = swarm.ParsePacing(pacing); err != nil {
				return usageError{err}
			}
			if cfg.Churn, err = swarm.ParseLifetime(churn); err != nil {
				return usageError{err}
			}
			if part != "" {
				if cfg.Part, err = parsePart(part); err != nil {
					return err
				}
			}
			cfg.Storms = storms
			cfg.Targets = targets
			for _, p := range phases {
				ph, err := swarm.ParsePhase(p)
				if err != nil {
					return usageError{err}
				}
				cfg.Phases = append(cfg.Phases, ph)
			}
			for _, s := range slowdowns {
				sd, err := swarm.ParseSlowdown(s)
				if err != nil {
					return usageError{err}
				}
				cfg.Slowdowns = append(cfg.Slowdowns, sd)
			}
			if procs < 1 || procs > 64 {
				return usagef("--procs must be between 1 and 64")
			}
			if agents < 0 || agents > 1000 || (agents > 0 && (redisURL == "" || procs > 1)) {
				return usagef("--agents N (1 to 1000) needs --redis URL and no --procs")
			}
			if out == "" {
				return usagef("--out FILE is required: the run's result goes there")
			}
			raiseFileLimit()
			cfg.Logger = swarmLogger(cmd.ErrOrStderr(), quiet)
			if !quiet {
				cfg.Progress = cmd.ErrOrStderr()
			}
			if cfg.RunID == "" {
				cfg.RunID = strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			var res *swarm.Result
			switch {
			case agents > 0:
				res, err = runSwarmAgents(cmd.Context(), cfg, agents, redisURL, redisPrefix, joinTimeout)
			case procs > 1:
				// Workers would each fail alike: check once, here.
				whole := cfg
				whole.Part = swarm.Part{Index: 0, Count: procs}
				if err := swarm.Check(whole); err != nil {
					return usageError{err}
				}
				res, err = runSwarmProcs(cmd.Context(), cfg, procs, cmd.ErrOrStderr())
			default:
				res, err = swarm.Run(cmd.Context(), cfg)
			}
			if errors.Is(err, swarm.ErrConfig) || errors.Is(err, swarm.ErrTemplate) {
				return usageError{err}
			}
			if res != nil {
				if werr := writeSwarmResult(res, out, hdrLog); werr != nil {
					return errors.Join(err, werr)
				}
				printSwarmSummary(cmd.OutOrStdout(), res)
			}
			if errors.Is(err, context.Canceled) {
				return nil // Ctrl-C: results written
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&targets, "target", []string{swarm.DefaultTarget}, "server base URL, {target} in the templates; repeat for several nodes sharing a broker (clients and publishes round robin)")
	f.StringVar(&profile, "profile", "darktime", "target profile: "+strings.Join(swarm.ProfileNames(), ", "))
	f.StringVar(&profileFile, "profile-file", "", "read the profile from a JSON `FILE` (fields as in swarm.Profile)")
	f.StringVar(&subURL, "subscribe", "", "subscribe URL template (overrides the profile)")
	f.StringVar(&pubMethod, "publish-method", "", "publish method (overrides the profile)")
	f.StringVar(&pubURL, "publish-url", "", "publish URL template (overrides the profile)")
	f.StringArrayVar(&pubHeaders, "publish-header", nil, "publish header template \"Name: value\" (repeatable; replaces the profile's)")
	f.StringArrayVar(&subHeaders, "subscribe-header", nil, "subscribe header template \"Name: value\" with {client} and {token} (repeatable; replaces the profile's)")
	f.StringVar(&token.SecretEnv, "token-secret-env", "", "mint {token} per client (sub = client index, channels = its channels) with the HMAC secret in this environment variable; without {token} in a template it goes in Authorization: Bearer")
	f.StringVar(&token.KeyFile, "token-key-file", "", "mint {token} with this PEM private key (RS*/PS*/ES*/EdDSA) or HMAC secret file")
	f.StringVar(&token.Algorithm, "token-alg", "", "token signing algorithm (default the key's: HS256, RS256, ES*, EdDSA)")
	f.DurationVar(&token.TTL, "token-ttl", time.Hour, "token lifetime; the client renews at once when the server ends a stream for expiry (darktime.renew)")
	f.StringVar(&token.Issuer, "token-issuer", "", "iss claim of minted tokens")
	f.StringVar(&token.Audience, "token-audience", "", "aud claim of minted tokens")
	f.StringArrayVar(&tokenClaims, "token-claim", nil, "extra claim NAME=VALUE in minted tokens (repeatable)")
	f.StringVar(&pubBody, "publish-body", "", "publish body template (overrides the profile)")
	f.StringVar(&extractSeq, "extract-seq", "", "text before the seq in received data (overrides the profile)")
	f.StringVar(&extractTS, "extract-ts", "", "text before the timestamp in received data (overrides the profile)")
	f.StringVar(&extractChan, "extract-channel", "", "text before the channel name in received data (overrides the profile)")
	f.BoolVar(&extractJSONString, "extract-json-string", false, "the received data carries the published body as an escaped JSON string (a JSON envelope): match the markers with its escapes undone")
	f.IntVar(&cfg.Clients, "clients", swarm.DefaultClients, "EventSource clients")
	f.IntVar(&cfg.Channels, "channels", swarm.DefaultChannels, "channels")
	f.StringVar(&distribution, "distribution", "uniform", "channel assignment: uniform, zipf[:S], one, several[:N]")
	f.StringVar(&cfg.ChannelPrefix, "channel-prefix", "", "channel name prefix (default random)")
	f.Float64Var(&cfg.Ramp, "ramp", swarm.DefaultRamp, "clients connected per second")
	f.IntVar(&cfg.Sources, "sources", 0, "loopback source addresses 127.0.0.2.. (default one per 20,000 clients)")
	f.Float64Var(&cfg.Rate, "rate", swarm.DefaultRate, "publish rate, events/s over all channels")
	f.StringVar(&pacing, "pacing", "constant", "constant, linear:SLOPE (events/s per s) or sine:PERIOD:AMPLITUDE")
	f.IntVar(&cfg.Size, "size", swarm.DefaultSize, "event body size in bytes")
	f.DurationVar(&cfg.Duration, "duration", swarm.DefaultDuration, "how long to publish")
	f.DurationVar(&cfg.Settle, "settle", swarm.DefaultSettle, "pause between connecting and publishing")
	f.DurationVar(&cfg.Drain, "drain", swarm.DefaultDrain, "wait for deliveries after the last publish")
	f.StringVar(&churn, "churn", "none", "connection lifetime: none, fixed:D, exp:MEAN, uniform:MIN-MAX")
	f.DurationSliceVar(&storms, "storm", nil, "cut every connection at this offset into publishing (repeatable)")
	f.StringArrayVar(&phases, "phase", nil, "publish in phases, one after another, instead of --duration: NAME:DURATION[:RATE][:hot=CHANNEL] (repeatable; hot sends RATE to that channel on top of --rate)")
	f.StringArrayVar(&slowdowns, "slowdown", nil, "AT:CLIENTS:READ_DELAY: from AT into publishing, CLIENTS clients wait READ_DELAY before every read (repeatable)")
	f.DurationVar(&cfg.DefaultRetry, "retry", swarm.DefaultRetry, "reconnect delay until the server sends a retry hint")
	f.DurationVar(&cfg.LedgerWindow, "ledger-window", swarm.DefaultLedgerWindow, "ledger time window (0: one account per channel)")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed for channel assignment (default random)")
	f.IntVar(&procs, "procs", 1, "worker processes, each with a slice of the channels and clients; results merged")
	f.IntVar(&agents, "agents", 0, "coordinate N `darktime swarm agent`s through --redis, one part each; results merged")
	f.StringVar(&redisURL, "redis", "", "Redis `URL` shared with the agents (with --agents)")
	f.StringVar(&redisPrefix, "redis-prefix", swarm.DefaultAgentPrefix, "prefix of the agents' Redis keys")
	f.DurationVar(&joinTimeout, "join-timeout", swarm.DefaultJoinTimeout, "how long to wait for the agents to join")
	f.StringVar(&part, "part", "", "run only part INDEX/COUNT of the run (set by --procs)")
	f.StringVar(&cfg.RunID, "run-id", "", "run id shared by the parts of one run (default generated)")
	f.StringVar(&out, "out", "", "write the JSON result to `FILE` (required)")
	f.StringVar(&hdrLog, "hdr-log", "", "write per-second histograms in HdrHistogram interval-log format to `FILE`")
	f.BoolVar(&quiet, "quiet", false, "no progress lines, and only warnings and errors logged")
	_ = f.MarkHidden("part")
	cmd.AddCommand(newSwarmAgentCmd())
	return cmd
}

func newSwarmAgentCmd() *cobra.Command {
	var (
		agent    swarm.Agent
		redisURL string
		quiet    bool
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
			rdb, err := swarmRedis(redisURL)
			if err != nil {
				return err
			}
			defer rdb.Close()
			raiseFileLimit()
			agent.Redis = rdb
			agent.Logger = swarmLogger(cmd.ErrOrStderr(), quiet)
			if !quiet {
				agent.Progress = cmd.ErrOrStderr()
			}
			if err := agent.Serve(cmd.Context()); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&redisURL, "redis", "", "Redis `URL` shared with the coordinator (required)")
	f.StringVar(&agent.Prefix, "redis-prefix", swarm.DefaultAgentPrefix, "prefix of the swarm's Redis keys")
	f.StringVar(&agent.Name, "name", "", "agent name shown by the coordinator (default host-pid)")
	f.IntVar(&agent.Runs, "runs", 0, "exit after this many runs (0: serve until interrupted)")
	f.BoolVar(&quiet, "quiet", false, "no progress lines, and only warnings and errors logged")
	return cmd
}

// swarmLogger logs lifecycle messages to w: from INFO on, or with quiet
// only warnings and errors.
func swarmLogger(w io.Writer, quiet bool) *slog.Logger {
	level := slog.LevelInfo
	if quiet {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func swarmRedis(url string) (*redis.Client, error) {
	if url == "" {
		return nil, usagef("--redis URL is required")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, usagef("--redis %q: %v", url, err)
	}
	return redis.NewClient(opt), nil
}

// runSwarmAgents coordinates the run over agents through Redis.
func runSwarmAgents(ctx context.Context, cfg swarm.Config, agents int, redisURL, prefix string, join time.Duration) (*swarm.Result, error) {
	rdb, err := swarmRedis(redisURL)
	if err != nil {
		return nil, err
	}
	defer rdb.Close()
	return swarm.RunAgents(ctx, cfg, swarm.Coordination{Redis: rdb, Prefix: prefix, Agents: agents, JoinTimeout: join})
}

func swarmProfile(cmd *cobra.Command, name, file string) (swarm.Profile, error) {
	if file != "" {
		data, err := readYAMLFile(cmd, file) // JSON, bounded as the YAML files: 1 MiB
		if err != nil {
			return swarm.Profile{}, usagef("--profile-file: %v", err)
		}
		var p swarm.Profile
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return p, usagef("--profile-file %s: %v", file, err)
		}
		return p, nil
	}
	p, ok := swarm.LookupProfile(name)
	if !ok {
		return p, usagef("unknown --profile %q: want one of %s", name, strings.Join(swarm.ProfileNames(), ", "))
	}
	return p, nil
}

func parsePart(s string) (swarm.Part, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return swarm.Part{}, usagef("--part %q: want INDEX/COUNT", s)
	}
	return swarm.Part{Index: i, Count: n}, nil
}

// runSwarmProcs re-executes this binary once per part with the same flags.
func runSwarmProcs(ctx context.Context, cfg swarm.Config, procs int, stderr io.Writer) (*swarm.Result, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano()) | 1
	}
	if cfg.ChannelPrefix == "" {
		cfg.ChannelPrefix = "swarm" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	var base []string
	skip := map[string]bool{"--procs": true, "--out": true, "--hdr-log": true, "--part": true, "--run-id": true, "--seed": true, "--channel-prefix": true}
	args := os.Args[1:]
	for i := 0; i < len(args); i++ {
		name, _, hasValue := strings.Cut(args[i], "=")
		if skip[name] {
			if !hasValue && i+1 < len(args) {
				i++
			}
			continue
		}
		base = append(base, args[i])
	}
	return swarm.RunProcs(ctx, procs, func(ctx context.Context, part swarm.Part, out string) *exec.Cmd {
		a := append(append([]string{}, base...),
			"--part", fmt.Sprintf("%d/%d", part.Index, part.Count), "--run-id", cfg.RunID,
			"--seed", strconv.FormatUint(cfg.Seed, 10), "--channel-prefix", cfg.ChannelPrefix, "--out", out)
		if part.Index != 0 {
			a = append(a, "--quiet")
		}
		cmd := exec.CommandContext(ctx, self, a...)
		cmd.Stdout = io.Discard
		cmd.Stderr = stderr
		return cmd
	})
}

func writeSwarmResult(res *swarm.Result, out, hdrLog string) error {
	write := func(path string, fill func(io.Writer) error) error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp := path + ".tmp"
		f, err := os.Create(tmp)
		if err != nil {
			return err
		}
		if err := fill(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	if err := write(out, res.Write); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if hdrLog != "" {
		if err := write(hdrLog, func(w io.Writer) error { return swarm.WriteHdrLog(w, res) }); err != nil {
			return fmt.Errorf("write hdr log: %w", err)
		}
	}
	return nil
}

func printSwarmSummary(w io.Writer, res *swarm.Result) {
	t := res.Ledger.Totals()
	d := res.Summary[swarm.HistDelivery]
	fmt.Fprintf(w, "run %s (%s, %s)  parts %d\n", res.RunID, res.Profile, res.Target, len(res.Parts))
	if missing := res.Missing(); len(missing) > 0 {
		fmt.Fprintf(w, "INCOMPLETE: parts %v of %d missing; the figures below cover the others only\n", missing, missing[0].Count)
	}
	fmt.Fprintf(w, "clients   planned %d  connected %d  connects %d  reconnects %d  drops %d  storm cuts %d  churned %d  failed %d\n",
		res.Clients.Planned, res.Clients.Connected, res.Clients.Connects, res.Clients.Reconnects, res.Clients.Drops, res.Clients.StormCuts, res.Clients.Churned, res.Clients.Failed)
	if res.Clients.SlowClients > 0 || res.Clients.Failovers > 0 {
		fmt.Fprintf(w, "          slow clients %d  failovers %d\n", res.Clients.SlowClients, res.Clients.Failovers)
	}
	if n := res.Clients.Renewals; n > 0 || res.Errors["auth_unauthorized"]+res.Errors["auth_forbidden"] > 0 {
		fmt.Fprintf(w, "auth      renewals %d (streams ended by darktime.renew, resumed with a fresh token)  refused 401 %d  403 %d\n",
			n, res.Errors["auth_unauthorized"], res.Errors["auth_forbidden"])
	}
	fmt.Fprintf(w, "publishes attempted %d  ok %d  failed %d\n", res.Publish.Attempted, res.Publish.OK, res.Publish.Failed)
	fmt.Fprintf(w, "ledger    owed %d  received %d  lost %d  duplicated %d  reordered %d  late %d  balance %d\n",
		t.Credit, t.Debit, t.Lost, t.Duplicated, t.Reordered, t.Late, t.Balance())
	fmt.Fprintf(w, "          note: %s\n", reorderedNote)
	if a := res.Attribution; len(a.Lost) > 0 || len(a.Extra) > 0 {
		orNone := func(m map[string]int64) string {
			if len(m) == 0 {
				return "none"
			}
			return formatCounts(m)
		}
		fmt.Fprintf(w, "causes    lost: %s  extra: %s  (darktime report says which are explained)\n", orNone(a.Lost), orNone(a.Extra))
	}
	if a := res.Attribution; a.Resumes != (swarm.ResumeCounts{}) || a.Hangups != (swarm.HangupCounts{}) {
		fmt.Fprintf(w, "resumes   with id %d  without id %d  replayed %d  gapped %d;  hang-ups storm %d  churn %d  stop %d  discarded %d  timed out %d\n",
			a.Resumes.WithID, a.Resumes.NoID, a.Resumes.Replayed, a.Resumes.Gapped, a.Hangups.Storm, a.Hangups.Churn, a.Hangups.Stop, a.Hangups.Discarded, a.Hangups.Timeouts)
	}
	fmt.Fprintf(w, "delivery  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  (%d events)\n", d.P50, d.P90, d.P99, d.P999, d.Max, d.Count)
	for _, r := range res.Resources {
		fmt.Fprintf(w, "part %d    client CPU %.2f µs/event  RSS %.1f KiB per idle connection\n", r.Part, r.CPUMicrosPerEvt, r.RSSPerConnKiB)
	}
	if len(res.Errors) > 0 {
		fmt.Fprintf(w, "errors    %s\n", formatCounts(res.Errors))
	}
	if f := res.ExtractFailure; f != nil {
		fmt.Fprintf(w, "WARNING   extract: %s\n", f)
	}
}

// reorderedNote says what the summary's reordered counts.
const reorderedNote = "reordered counts only events whose publish was answered before the later one was sent (publishes in flight together have no order)"

// formatCounts lists counts by kind, largest first: "status_5xx 322, dial 3".
func formatCounts(m map[string]int64) string {
	kinds := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = k + " " + strconv.FormatInt(m[k], 10)
	}
	return strings.Join(parts, ", ")
}
