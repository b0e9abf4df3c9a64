// Package promtest starts a private Prometheus server for a test, with
// its remote-write receiver and native histograms on: a temporary data
// folder, a free loopback port, no scrape targets, stopped and removed at
// the test's end. The binary comes from $DARKTIME_PROMETHEUS, Debian's
// /usr/bin/prometheus or PATH; without one the test skips, saying to
// install Debian's prometheus (make deps does). Query asks its HTTP API.
package promtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/tstest"
)

// BinEnv names a prometheus binary to use.
const BinEnv = "DARKTIME_PROMETHEUS"

// InstallHint says how to get the binary.
const InstallHint = "apt-get install -y prometheus (or make deps), or set " + BinEnv + " to a prometheus binary (2.42 or later)"

// findBin returns the prometheus binary, or "".
func findBin() string {
	if p := os.Getenv(BinEnv); p != "" {
		return p
	}
	if st, err := os.Stat("/usr/bin/prometheus"); err == nil && !st.IsDir() {
		return "/usr/bin/prometheus"
	}
	p, _ := exec.LookPath("prometheus")
	return p
}

// Server is a running private Prometheus.
type Server struct {
	// URL is its base URL (http://127.0.0.1:PORT); WriteURL its
	// remote-write endpoint.
	URL, WriteURL string

	daemon *tstest.Daemon
	log    string
	http   *http.Client
}

// Start starts a server for t and returns it; t's cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := findBin()
	if bin == "" {
		t.Skip("prometheus not found: " + InstallHint)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte("global:\n  evaluation_interval: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{log: filepath.Join(dir, "prometheus.log"), http: &http.Client{Timeout: 10 * time.Second}}
	var lastErr error
	for range 3 { // a free port may be taken before prometheus listens
		addr := "127.0.0.1:" + strconv.Itoa(tstest.FreePort(t))
		if lastErr = s.start(bin, conf, filepath.Join(dir, "data"), addr); lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
	}
	t.Fatalf("start prometheus: %v", lastErr)
	return nil
}

func (s *Server) start(bin, conf, data, addr string) error {
	cmd := exec.Command(bin,
		"--config.file="+conf, "--storage.tsdb.path="+data, "--web.listen-address="+addr,
		"--web.enable-remote-write-receiver", "--enable-feature=native-histograms")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	s.URL = "http://" + addr
	s.WriteURL = s.URL + "/api/v1/write"
	d, err := tstest.StartDaemon("prometheus", cmd, s.log, func() error {
		resp, err := s.http.Get(s.URL + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})
	s.daemon = d
	return err
}

// stop asks the server to shut down (SIGTERM), and kills it if it has
// not exited in 15 s.
func (s *Server) stop() { s.daemon.Stop(syscall.SIGTERM) }

// Log is the server's output so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log)
	return string(b)
}

// Sample is one series of an instant query's vector: a float value, or a
// native histogram.
type Sample struct {
	Metric    map[string]string
	Value     float64
	Histogram *Histogram
}

// Histogram is a native histogram as the HTTP API shows it.
type Histogram struct {
	Count, Sum float64
	// Buckets are [boundary rule, lower, upper, count] as the API gives
	// them.
	Buckets [][4]json.RawMessage
}

// Query runs an instant query at time at (now when zero) and returns its
// vector.
func (s *Server) Query(ctx context.Context, query string, at time.Time) ([]Sample, error) {
	v := url.Values{"query": {query}}
	if !at.IsZero() {
		v.Set("time", strconv.FormatFloat(float64(at.UnixMilli())/1e3, 'f', 3, 64))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/query?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	var out struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric    map[string]string   `json:"metric"`
				Value     *[2]json.RawMessage `json:"value"`
				Histogram *[2]json.RawMessage `json:"histogram"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("query %q: %s: %v", query, resp.Status, err)
	}
	if out.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", query, resp.Status, out.Error)
	}
	if out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: a %s, want a vector", query, out.Data.ResultType)
	}
	var samples []Sample
	for _, r := range out.Data.Result {
		smp := Sample{Metric: r.Metric}
		switch {
		case r.Value != nil:
			var str string
			if err := json.Unmarshal(r.Value[1], &str); err != nil {
				return nil, fmt.Errorf("query %q: value %s: %v", query, r.Value[1], err)
			}
			if smp.Value, err = strconv.ParseFloat(str, 64); err != nil {
				return nil, fmt.Errorf("query %q: value %q: %v", query, str, err)
			}
		case r.Histogram != nil:
			var h struct {
				Count   string               `json:"count"`
				Sum     string               `json:"sum"`
				Buckets [][4]json.RawMessage `json:"buckets"`
			}
			if err := json.Unmarshal(r.Histogram[1], &h); err != nil {
				return nil, fmt.Errorf("query %q: histogram: %v", query, err)
			}
			smp.Histogram = &Histogram{Buckets: h.Buckets}
			smp.Histogram.Count, _ = strconv.ParseFloat(h.Count, 64)
			smp.Histogram.Sum, _ = strconv.ParseFloat(h.Sum, 64)
		}
		samples = append(samples, smp)
	}
	return samples, nil
}

// Scalar runs a query that must return exactly one float sample.
func (s *Server) Scalar(ctx context.Context, query string, at time.Time) (float64, error) {
	samples, err := s.Query(ctx, query, at)
	if err != nil {
		return 0, err
	}
	if len(samples) != 1 || samples[0].Histogram != nil {
		return 0, fmt.Errorf("query %q: %d series, want one float", query, len(samples))
	}
	return samples[0].Value, nil
}
