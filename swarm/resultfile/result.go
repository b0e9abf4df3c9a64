// Package resultfile is the swarm's result file, schema
// "darktime.swarm/v1" (swarm/RESULTS.md): Result and every type it holds —
// the config echo, the client and event counts, the HdrHistograms, the
// per-second series, the +1/-1 ledger and its attribution — with the pure
// functions over them: ReadResult (schema, checksum, histograms), Write,
// Merge (the parts of one run, exactly) and Missing. It is a leaf (no
// clients, no publishers, no network, no Redis), so that darktime report
// and scenarios read results without linking the swarm engine. package
// swarm keeps every name as an alias (swarm.Result, swarm.Merge, ...).
package resultfile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/swarm/params"
)

// Schema versions the result file format (RESULTS.md).
const Schema = "darktime.swarm/v1"

// ErrResult marks a result file that cannot be used: truncated, corrupt,
// of another schema, or results that do not belong together.
var ErrResult = errors.New("bad swarm result")

// Result is what one run (or one part of it) measured. It is written as
// one JSON file; see RESULTS.md.
type Result struct {
	Schema string `json:"schema"`
	RunID  string `json:"run_id"`
	// Parts lists the slices of the run this result covers (one per
	// process or agent; several after Merge).
	Parts   []PartInfo `json:"parts"`
	Profile string     `json:"profile"`
	Target  string     `json:"target"`
	Config  ConfigEcho `json:"config"`
	Started time.Time  `json:"started"`
	Ended   time.Time  `json:"ended"`
	// PublishStarted is when publishing began (the earliest part's after
	// Merge): phases, storms and slowdowns are offsets from it. Absent
	// when the run stopped before publishing.
	PublishStarted time.Time `json:"publish_started,omitzero"`
	// Interrupted is set when the run was stopped (Ctrl-C) before its end.
	Interrupted bool `json:"interrupted,omitempty"`

	Clients Totals      `json:"clients"`
	Events  EventCounts `json:"events"`
	// ExtractFailure, when set, says that none of the first events
	// received could be read with the profile's extract markers, which
	// fields failed and what the data looked like (after Merge: the first
	// part's that has one).
	ExtractFailure *ExtractFailure `json:"extract_failure,omitempty"`

	Publish PublishInfo `json:"publish"`
	// Errors counts errors by kind (connect and stream errors; "drop_*" for
	// open streams that ended); ErrorSamples keeps one message per kind.
	Errors       map[string]int64  `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`

	// Histograms are HdrHistograms in microseconds (base64 compressed V2,
	// the interval-log payload): delivery, connect, first_event, publish.
	Histograms map[string]string `json:"histograms"`
	// Summary has percentiles of the histograms in milliseconds, for
	// reading the file by eye; Merge recomputes it.
	Summary map[string]Percentiles `json:"summary"`
	// Series has one entry per second of the run.
	Series []Second `json:"series"`
	// Ledger is the per-channel, per-window +1/-1 account of deliveries.
	Ledger *ledger.Ledger `json:"ledger"`
	// Attribution gives every lost and extra delivery of the ledger its
	// cause, with the resume and hang-up evidence behind them.
	Attribution Attribution `json:"attribution,omitzero"`
	// Resources are this side's costs, per part.
	Resources []Resources `json:"resources"`

	// Checksum is the SHA-256 of the result's compact JSON with this field
	// empty; ReadResult refuses a file whose content does not match.
	Checksum string `json:"checksum"`
}

// PartInfo names one part of a run.
type PartInfo struct {
	Part
	Host string `json:"host,omitempty"`
	PID  int    `json:"pid,omitempty"`
}

// ConfigEcho is the swarm.Config a result was measured with, defaults filled in.
type ConfigEcho struct {
	Clients         int                 `json:"clients"` // of the whole run
	Channels        int                 `json:"channels"`
	Distribution    params.Distribution `json:"distribution"`
	ChannelPrefix   string              `json:"channel_prefix"`
	RampPerS        float64             `json:"ramp_per_s"`
	RateEventsPerS  float64             `json:"rate_events_per_s"` // of the whole run
	Pacing          params.Pacing       `json:"pacing"`
	SizeBytes       int                 `json:"size_bytes"`
	DurationSeconds float64             `json:"duration_seconds"`
	SettleSeconds   float64             `json:"settle_seconds"`
	DrainSeconds    float64             `json:"drain_seconds"`
	Churn           params.Lifetime     `json:"churn"`
	StormsSeconds   []float64           `json:"storms_seconds,omitempty"`
	LedgerWindowS   float64             `json:"ledger_window_seconds"`
	Seed            uint64              `json:"seed"`
	ProfileDetail   Profile             `json:"profile_detail"`
	RetrySeconds    float64             `json:"default_retry_seconds"`
	LateAfter       time.Duration       `json:"late_after_ns"`
	Phases          []PhaseEcho         `json:"phases,omitempty"`
	Slowdowns       []SlowdownEcho      `json:"slowdowns,omitempty"`
	// Token is how {token} was minted (swarm.Config.Token), without the key.
	Token *TokenEcho `json:"token,omitempty"`
	// MaxRate, Publishers and Events echo swarm.Config's (absent when
	// unset): publishing as fast as the target answers from Publishers
	// requests in flight, and the events the run stopped after.
	MaxRate    bool  `json:"max_rate,omitempty"`
	Publishers int   `json:"publishers,omitempty"`
	Events     int64 `json:"events,omitempty"`
}

// PhaseEcho is one swarm.Config.Phases entry as run.
type PhaseEcho struct {
	Name string `json:"name"`
	// StartSeconds is the phase's offset from the first publish.
	StartSeconds    float64 `json:"start_seconds"`
	DurationSeconds float64 `json:"duration_seconds"`
	// RateEventsPerS is the phase's rate over the whole run; in a hot
	// phase, the hot channel's rate on top of swarm.Config.Rate.
	RateEventsPerS float64 `json:"rate_events_per_s"`
	// HotChannel is the hot channel's index, in a hot phase only.
	HotChannel *int `json:"hot_channel,omitempty"`
}

// SlowdownEcho is one swarm.Config.Slowdowns entry.
type SlowdownEcho struct {
	AtSeconds        float64 `json:"at_seconds"`
	Clients          int     `json:"clients"` // of the whole run
	ReadDelaySeconds float64 `json:"read_delay_seconds"`
}

// Totals counts client lifecycle events.
type Totals struct {
	Planned    int64 `json:"planned"`    // clients of this part
	Connected  int64 `json:"connected"`  // clients whose first attempt succeeded
	Connects   int64 `json:"connects"`   // successful connects, reconnects included
	Reconnects int64 `json:"reconnects"` // reconnects after a drop or a storm cut
	Drops      int64 `json:"drops"`      // open streams the server or network ended
	StormCuts  int64 `json:"storm_cuts"` // streams cut by a reconnect storm
	Churned    int64 `json:"churned"`    // sessions that ended by churn
	Failed     int64 `json:"failed"`     // clients that gave up (non-SSE answer)
	// SlowClients counts clients made slow readers (swarm.Config.Slowdowns).
	SlowClients int64 `json:"slow_clients,omitempty"`
	// Failovers counts moves of a client to the next target after a
	// connect failed below HTTP (several swarm.Config.Targets).
	Failovers int64 `json:"failovers,omitempty"`
	// Renewals counts streams the server ended with a <notices>renew
	// event (the token expired) and the client resumed at once with a
	// fresh token; they are in Reconnects too.
	Renewals int64 `json:"renewals,omitempty"`
}

// Add sums two parts' totals.
func (t Totals) Add(o Totals) Totals {
	return Totals{
		Planned: t.Planned + o.Planned, Connected: t.Connected + o.Connected, Connects: t.Connects + o.Connects,
		Reconnects: t.Reconnects + o.Reconnects, Drops: t.Drops + o.Drops, StormCuts: t.StormCuts + o.StormCuts,
		Churned: t.Churned + o.Churned, Failed: t.Failed + o.Failed,
		SlowClients: t.SlowClients + o.SlowClients, Failovers: t.Failovers + o.Failovers,
		Renewals: t.Renewals + o.Renewals,
	}
}

// PublishInfo counts publishes.
type PublishInfo struct {
	Attempted int64            `json:"attempted"`
	OK        int64            `json:"ok"`
	Failed    int64            `json:"failed"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	// EventsOK and EventsFailed count the events of the requests answered
	// 2xx and of the others, with batches (Profile.Publish.Batch) only:
	// without, a request is one event.
	EventsOK     int64 `json:"events_ok,omitempty"`
	EventsFailed int64 `json:"events_failed,omitempty"`
	// Retried counts the requests answered 503 and sent again
	// (swarm.Config.RetryUnavailable); each is one publish, counted once
	// by its last answer.
	Retried int64 `json:"retried,omitempty"`
}

// Percentiles summarises a histogram in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// Summarise is a histogram's Percentiles.
func Summarise(h *hdrhistogram.Histogram) Percentiles {
	ms := func(v int64) float64 { return float64(v) / 1e3 }
	return Percentiles{
		Count: h.TotalCount(), P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Mean: h.Mean() / 1e3,
	}
}

// Second is one second of the run.
type Second struct {
	T               int64 `json:"t"`    // Unix seconds at the start of the interval
	Open            int64 `json:"open"` // connections open at its end
	Connects        int64 `json:"connects"`
	Events          int64 `json:"events"`
	Duplicated      int64 `json:"duplicated"`
	Reordered       int64 `json:"reordered"`
	PublishesOK     int64 `json:"publishes_ok"`
	PublishesFailed int64 `json:"publishes_failed"`
	Errors          int64 `json:"errors"`
	// Histograms of this second (delivery, connect, publish), when any
	// value was recorded.
	Histograms    map[string]string `json:"histograms,omitempty"`
	DeliveryP50Ms float64           `json:"delivery_p50_ms"`
	DeliveryP99Ms float64           `json:"delivery_p99_ms"`
}

// Summarise sets the second's delivery percentiles from its histogram.
func (s *Second) Summarise(delivery *hdrhistogram.Histogram) {
	s.DeliveryP50Ms = float64(delivery.ValueAtQuantile(50)) / 1e3
	s.DeliveryP99Ms = float64(delivery.ValueAtQuantile(99)) / 1e3
}

// Resources is what one part cost on the client side.
type Resources struct {
	Part             int     `json:"part"`
	CPUSeconds       float64 `json:"cpu_seconds"`
	CPUMicrosPerEvt  float64 `json:"cpu_us_per_event"`
	RSSIdleKiB       int64   `json:"rss_idle_kib"`
	RSSPerConnKiB    float64 `json:"rss_per_idle_connection_kib"`
	IdleConnections  int64   `json:"idle_connections"`
	EventsDuringLoad int64   `json:"events_during_load"`
}

// EncodeHistogram is a histogram as a result carries it: base64
// compressed V2, the interval-log payload.
func EncodeHistogram(h *hdrhistogram.Histogram) string {
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		panic(err) // only for an unknown cookie
	}
	return string(b)
}

// DecodeHistogram reads what EncodeHistogram wrote.
func DecodeHistogram(s string) (*hdrhistogram.Histogram, error) {
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Histogram decodes one of the result's histograms (nil when absent).
func (r *Result) Histogram(name string) (*hdrhistogram.Histogram, error) {
	s, ok := r.Histograms[name]
	if !ok {
		return nil, nil
	}
	return DecodeHistogram(s)
}

// checksum is the SHA-256 of the compact JSON with Checksum empty.
func (r *Result) checksum() (string, error) {
	c := *r
	c.Checksum = ""
	b, err := json.Marshal(&c)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Write stamps the checksum and writes the result as indented JSON.
func (r *Result) Write(w io.Writer) error {
	sum, err := r.checksum()
	if err != nil {
		return err
	}
	r.Checksum = sum
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadResult reads a result file and checks it: the schema, the checksum,
// every histogram and the ledger's totals. A truncated or edited file is
// an error wrapping ErrResult.
func ReadResult(rd io.Reader) (*Result, error) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	var probe struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v (truncated or not a result file?)", ErrResult, err)
	}
	if probe.Schema != Schema {
		return nil, fmt.Errorf("%w: schema %q, want %q", ErrResult, probe.Schema, Schema)
	}
	r := &Result{}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrResult, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the result", ErrResult)
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	sum, err := r.checksum()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrResult, err)
	}
	if sum != r.Checksum {
		return nil, fmt.Errorf("%w: checksum mismatch (the file was changed or damaged)", ErrResult)
	}
	return r, nil
}

// check verifies what the checksum cannot: that the parts make sense.
func (r *Result) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrResult, fmt.Sprintf(format, args...))
	}
	if r.RunID == "" || len(r.Parts) == 0 || r.Ledger == nil {
		return bad("run_id, parts and ledger are required")
	}
	for name, s := range r.Histograms {
		if _, err := DecodeHistogram(s); err != nil {
			return bad("histogram %s: %v", name, err)
		}
	}
	for _, sec := range r.Series {
		for name, s := range sec.Histograms {
			if _, err := DecodeHistogram(s); err != nil {
				return bad("histogram %s of second %d: %v", name, sec.T, err)
			}
		}
	}
	seen := map[Part]bool{}
	for _, p := range r.Parts {
		if p.Count < 1 || p.Index < 0 || p.Index >= p.Count || seen[p.Part] {
			return bad("bad or repeated part %d/%d", p.Index, p.Count)
		}
		seen[p.Part] = true
	}
	return nil
}

// Merge adds results of the parts of one run: counts and ledgers are
// summed, histograms merged exactly, series added second by second. It
// refuses results of different runs, schemas or ledger windows, and a part
// present twice.
func Merge(results ...*Result) (*Result, error) {
	if len(results) == 0 {
		return nil, fmt.Errorf("%w: nothing to merge", ErrResult)
	}
	first := results[0]
	out := &Result{
		Schema: Schema, RunID: first.RunID, Profile: first.Profile, Target: first.Target, Config: first.Config,
		Started: first.Started, Ended: first.Ended, Errors: map[string]int64{}, ErrorSamples: map[string]string{},
		Histograms: map[string]string{}, Summary: map[string]Percentiles{},
		Publish: PublishInfo{Errors: map[string]int64{}},
	}
	out.Ledger = ledger.New(first.Ledger.Window())
	hists := map[string]*hdrhistogram.Histogram{}
	type secAcc struct {
		Second
		hists map[string]*hdrhistogram.Histogram
	}
	secs := map[int64]*secAcc{}
	parts := map[Part]bool{}
	for _, r := range results {
		switch {
		case r.Schema != Schema:
			return nil, fmt.Errorf("%w: schema %q, want %q", ErrResult, r.Schema, Schema)
		case r.RunID != first.RunID:
			return nil, fmt.Errorf("%w: results of different runs (%s, %s) cannot be merged", ErrResult, first.RunID, r.RunID)
		case r.Ledger == nil:
			return nil, fmt.Errorf("%w: result without a ledger", ErrResult)
		}
		for _, p := range r.Parts {
			if parts[p.Part] {
				return nil, fmt.Errorf("%w: part %d/%d of run %s is present twice", ErrResult, p.Index, p.Count, r.RunID)
			}
			parts[p.Part] = true
		}
		if err := out.Ledger.Merge(r.Ledger); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrResult, err)
		}
		out.Parts = append(out.Parts, r.Parts...)
		out.Resources = append(out.Resources, r.Resources...)
		out.Interrupted = out.Interrupted || r.Interrupted
		if r.Started.Before(out.Started) {
			out.Started = r.Started
		}
		if r.Ended.After(out.Ended) {
			out.Ended = r.Ended
		}
		if !r.PublishStarted.IsZero() && (out.PublishStarted.IsZero() || r.PublishStarted.Before(out.PublishStarted)) {
			out.PublishStarted = r.PublishStarted
		}
		out.Clients = out.Clients.Add(r.Clients)
		out.Events = out.Events.Add(r.Events)
		if out.ExtractFailure == nil {
			out.ExtractFailure = r.ExtractFailure
		}
		out.Attribution = out.Attribution.Add(r.Attribution)
		out.Publish.Attempted += r.Publish.Attempted
		out.Publish.OK += r.Publish.OK
		out.Publish.Failed += r.Publish.Failed
		out.Publish.EventsOK += r.Publish.EventsOK
		out.Publish.EventsFailed += r.Publish.EventsFailed
		out.Publish.Retried += r.Publish.Retried
		for k, v := range r.Publish.Errors {
			out.Publish.Errors[k] += v
		}
		for k, v := range r.Errors {
			out.Errors[k] += v
		}
		for k, v := range r.ErrorSamples {
			if _, ok := out.ErrorSamples[k]; !ok {
				out.ErrorSamples[k] = v
			}
		}
		if err := mergeHistograms(hists, r.Histograms); err != nil {
			return nil, err
		}
		for _, s := range r.Series {
			acc := secs[s.T]
			if acc == nil {
				acc = &secAcc{Second: Second{T: s.T}, hists: map[string]*hdrhistogram.Histogram{}}
				secs[s.T] = acc
			}
			acc.Open += s.Open
			acc.Connects += s.Connects
			acc.Events += s.Events
			acc.Duplicated += s.Duplicated
			acc.Reordered += s.Reordered
			acc.PublishesOK += s.PublishesOK
			acc.PublishesFailed += s.PublishesFailed
			acc.Errors += s.Errors
			if err := mergeHistograms(acc.hists, s.Histograms); err != nil {
				return nil, err
			}
		}
	}
	for name, h := range hists {
		out.Histograms[name] = EncodeHistogram(h)
		out.Summary[name] = Summarise(h)
	}
	for _, t := range slices.Sorted(maps.Keys(secs)) {
		acc := secs[t]
		sec := acc.Second
		sec.Histograms = map[string]string{}
		for name, h := range acc.hists {
			sec.Histograms[name] = EncodeHistogram(h)
		}
		if len(sec.Histograms) == 0 {
			sec.Histograms = nil
		}
		d := acc.hists[HistDelivery]
		if d == nil {
			d = NewHistogram()
		}
		sec.Summarise(d)
		out.Series = append(out.Series, sec)
	}
	slices.SortFunc(out.Parts, func(a, b PartInfo) int { return a.Index - b.Index })
	if len(out.ErrorSamples) == 0 {
		out.ErrorSamples = nil
	}
	if len(out.Publish.Errors) == 0 {
		out.Publish.Errors = nil
	}
	return out, nil
}

func mergeHistograms(into map[string]*hdrhistogram.Histogram, from map[string]string) error {
	for name, s := range from {
		h, err := DecodeHistogram(s)
		if err != nil {
			return fmt.Errorf("%w: histogram %s: %v", ErrResult, name, err)
		}
		if into[name] == nil {
			into[name] = NewHistogram()
		}
		if dropped := into[name].Merge(h); dropped > 0 {
			return fmt.Errorf("%w: histogram %s: %d values out of range", ErrResult, name, dropped)
		}
	}
	return nil
}

// Missing lists the parts of the run that the result does not cover (nil
// for a complete result).
func (r *Result) Missing() []Part {
	if len(r.Parts) == 0 {
		return nil
	}
	n := r.Parts[0].Count
	have := map[int]bool{}
	for _, p := range r.Parts {
		have[p.Index] = true
	}
	var out []Part
	for i := range n {
		if !have[i] {
			out = append(out, Part{Index: i, Count: n})
		}
	}
	return out
}
