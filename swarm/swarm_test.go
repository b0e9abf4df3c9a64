package swarm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

func TestRunReferenceServer(t *testing.T) {
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if res.Clients.Connected != int64(cfg.Clients) {
		t.Errorf("connected %d of %d", res.Clients.Connected, cfg.Clients)
	}
	if res.Events.Events != res.Ledger.Totals().Debit {
		t.Errorf("events %d, ledger debits %d", res.Events.Events, res.Ledger.Totals().Debit)
	}
	if s := res.Summary[HistDelivery]; s.Count == 0 || s.P99 <= 0 {
		t.Errorf("delivery summary %+v", s)
	}
	if len(res.Series) == 0 {
		t.Error("no per-second series")
	}
	var buf bytes.Buffer
	if err := res.Write(&buf); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResult(&buf)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if back.Ledger.Totals() != res.Ledger.Totals() {
		t.Errorf("ledger after round trip %+v, want %+v", back.Ledger.Totals(), res.Ledger.Totals())
	}
	t.Logf("events %d, delivery %+v, errors %v", res.Events.Events, res.Summary[HistDelivery], res.Errors)
}

func TestRunReferenceServerRedis(t *testing.T) {
	tstest.Long(t, "a swarm run on Redis (~3 s; TestRunReferenceServer stays)")
	t.Parallel()
	rs := redistest.Start(t)
	target := startServer(t, server.Config{RedisURL: rs.URL, RedisPrefix: "swarmtest:"})
	cfg := quickConfig(t, target)
	cfg.Distribution = Distribution{Kind: DistSeveral, PerClient: 2}
	cfg.Storms = []time.Duration{600 * time.Millisecond}
	cfg.Duration = 2 * time.Second
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The storm cuts every stream; clients resume with Last-Event-ID and
	// the server replays what they missed from Redis history.
	if res.Clients.StormCuts != int64(cfg.Clients) {
		t.Errorf("storm cuts %d, want %d", res.Clients.StormCuts, cfg.Clients)
	}
	checkBalanced(t, res)
}

func TestRunChurn(t *testing.T) {
	tstest.Long(t, "a swarm run (~3 s)")
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	cfg.Churn = Lifetime{Kind: LifeUniform, Min: 300 * time.Millisecond, Max: 600 * time.Millisecond}
	cfg.ChurnGrace = 300 * time.Millisecond
	cfg.Distribution = Distribution{Kind: DistZipf, S: 1.5}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients.Churned < int64(cfg.Clients) {
		t.Errorf("churned %d sessions, want at least %d", res.Clients.Churned, cfg.Clients)
	}
	checkBalanced(t, res)
}

func TestRunBadTargets(t *testing.T) {
	t.Parallel()
	closed := "http://" + tstest.FreeAddr(t)
	mux := http.NewServeMux()
	mux.HandleFunc("/html/sub/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>not a stream</html>")
	})
	mux.HandleFunc("/e503/sub/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/garbage/sub/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "data: no seq here\n\ndata: {\"seq\":x}\n\n")
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	tests := []struct {
		name, target, errKind string
		wantErr               bool
	}{
		{"unreachable", closed, "dial", true},
		{"wrong content type", ts.URL + "/html", "not_sse", true},
		{"5xx", ts.URL + "/e503", "status_5xx", true},
		{"malformed events", ts.URL + "/garbage", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := quickConfig(t, tt.target)
			cfg.Clients, cfg.Channels, cfg.Duration, cfg.Drain = 4, 2, 300*time.Millisecond, 100*time.Millisecond
			cfg.Profile, _ = LookupProfile("nchan")
			res, err := Run(context.Background(), cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if res == nil {
				t.Fatal("no result")
			}
			if tt.errKind != "" && res.Errors[tt.errKind] == 0 {
				t.Errorf("errors %v, want %s counted", res.Errors, tt.errKind)
			}
			if tt.errKind == "" && res.Events.Malformed == 0 {
				t.Errorf("malformed %d, want some", res.Events.Malformed)
			}
		})
	}
}

func TestRunBadConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{Clients: -1},
		{Profile: Profile{Name: "x", Subscribe: "{target}/sub/{chanel}"}},
		{Distribution: Distribution{Kind: DistSeveral, PerClient: 2}, Profile: builtinProfiles["nchan"]},
		{Storms: []time.Duration{time.Hour}},
		{Part: Part{Index: 3, Count: 2}},
		{Profile: Profile{Name: "x", Subscribe: "{target}/sub/{channel}", Publish: PublishTemplate{URL: "{target}/pub?id={channel}&by={client}", Body: defaultBody}, Extract: defaultExtract}},
	} {
		if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrConfig) && !errors.Is(err, ErrTemplate) {
			t.Errorf("Run(%+v) = %v, want a config or template error", cfg, err)
		}
	}
}

func TestRunCancelWritesResult(t *testing.T) {
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	cfg.Duration = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) || res == nil || !res.Interrupted {
		t.Fatalf("Run = %v, %v; want an interrupted result", res, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopping took %v", took)
	}
	checkBalanced(t, res)
}
