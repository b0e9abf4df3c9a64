package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
)

// clusterFixture is a server node on a private Redis Cluster with one SSE
// stream per channel, and the ledger of what publishes answered 201.
type clusterFixture struct {
	t        *testing.T
	cluster  *redistest.Cluster
	base     string
	prefix   string
	channels []string
	streams  map[string]*stream

	mu    sync.Mutex
	acked map[string][]string // channel -> data of publishes answered 201
}

func newClusterFixture(t *testing.T, nodeTimeout time.Duration) *clusterFixture {
	t.Helper()
	c := redistest.StartCluster(t, 3, 1, redistest.ClusterOptions{NodeTimeout: nodeTimeout})
	f := &clusterFixture{t: t, cluster: c, prefix: fmt.Sprintf("srv%d:", time.Now().UnixNano()), streams: map[string]*stream{}, acked: map[string][]string{}}
	_, f.base = startServer(t, Config{RedisURL: c.URL, RedisPrefix: f.prefix, HealthProbe: 100 * time.Millisecond, HealthLag: time.Second})
	for i := range 9 {
		ch := fmt.Sprintf("c%d", i)
		f.channels = append(f.channels, ch)
		f.streams[ch] = subscribe(t, f.base+"/sub/"+ch, nil)
	}
	f.waitHealth(http.StatusOK, "", 10*time.Second)
	tstest.WaitFor(t, 10*time.Second, "a health probe back through each of the 3 links", func() bool {
		links := f.links()
		for _, l := range links {
			if l["probe_age_ms"] == nil || l["probe_age_ms"].(float64) == 0 {
				return false
			}
		}
		return len(links) == 3
	})
	return f
}

// links returns /stats "links".
func (f *clusterFixture) links() []map[string]any {
	_, st := do(f.t, "GET", f.base+"/stats", nil, "")
	raw, _ := st["links"].([]any)
	var out []map[string]any
	for _, l := range raw {
		m, _ := l.(map[string]any)
		out = append(out, m)
	}
	return out
}

// answered is how many publishes were answered 201 so far.
func (f *clusterFixture) answered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, a := range f.acked {
		n += len(a)
	}
	return n
}

// health returns /healthz's status and reasons.
func (f *clusterFixture) health() (int, string) {
	resp, err := http.Get(f.base + "/healthz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var body struct {
		Reasons []string `json:"reasons"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, strings.Join(body.Reasons, "; ")
}

// waitHealth waits until /healthz answers status (with a reason containing
// want) and returns how long that took.
func (f *clusterFixture) waitHealth(status int, want string, timeout time.Duration) time.Duration {
	f.t.Helper()
	start := time.Now()
	var code int
	var why string
	tstest.WaitFor(f.t, timeout, fmt.Sprintf("/healthz %d %q", status, want), func() bool {
		code, why = f.health()
		return code == status && strings.Contains(why, want)
	})
	f.t.Logf("/healthz %d after %v: %s", code, time.Since(start).Round(time.Millisecond), why)
	return time.Since(start)
}

// publishLoop publishes on every channel (one publisher per channel, so
// a stalled shard holds up only its own) until stop, noting what was
// answered 201.
func (f *clusterFixture) publishLoop(stop <-chan struct{}) (done func() (ok, failed int)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, failed int
	for _, ch := range f.channels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 2 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				data := fmt.Sprintf("%s-e%d", ch, i)
				resp, err := client.Post(f.base+"/pub?id="+ch, "text/plain", strings.NewReader(data))
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusCreated {
					mu.Lock()
					failed++
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
					continue
				}
				mu.Lock()
				ok++
				mu.Unlock()
				f.mu.Lock()
				f.acked[ch] = append(f.acked[ch], data)
				f.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return func() (int, int) { wg.Wait(); return ok, failed }
}

// checkNothingLost publishes a marker per channel and reads each stream up
// to it: every event answered 201 must be on it, unless the stream
// announced a gap (darktime.missed) before.
func (f *clusterFixture) checkNothingLost() {
	f.t.Helper()
	for _, ch := range f.channels {
		marker := "marker-" + ch
		publish(f.t, f.base, ch, marker)
		seen := map[string]bool{}
		missed := false
		for {
			ev := f.streams[ch].next(20 * time.Second)
			if ev.Event == "darktime.missed" {
				missed = true
				continue
			}
			if string(ev.Data) == marker {
				break
			}
			seen[string(ev.Data)] = true
		}
		f.mu.Lock()
		var lost []string
		for _, d := range f.acked[ch] {
			if !seen[d] {
				lost = append(lost, d)
			}
		}
		f.mu.Unlock()
		if len(lost) > 0 && !missed {
			f.t.Errorf("%s: %d events answered 201 never delivered and no darktime.missed: %v", ch, len(lost), lost)
		}
		if missed {
			f.t.Logf("%s: darktime.missed announced (%d answered 201 not delivered)", ch, len(lost))
		}
	}
}

// TestClusterPausedShardIsUnhealthy pauses one master (SIGSTOP: its
// connections stay open and silent, as a stalled or partitioned shard's;
// its replica does not take over within the test): /healthz turns 503
// naming the shard within seconds, and once it continues, 200 again with
// nothing answered 201 lost.
func TestClusterPausedShardIsUnhealthy(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster")
	f := newClusterFixture(t, 60*time.Second)
	victim := f.cluster.MasterOf(f.prefix + "{c0}:h")
	stop := make(chan struct{})
	done := f.publishLoop(stop)
	tstest.WaitFor(t, 10*time.Second, "100 publishes before the pause", func() bool { return f.answered() >= 100 })
	victim.Pause()
	took := f.waitHealth(http.StatusServiceUnavailable, victim.Addr, 10*time.Second)
	if took > 5*time.Second {
		t.Errorf("the paused shard showed unhealthy after %v, want within 5s", took)
	}
	n := f.answered()
	tstest.WaitFor(t, 10*time.Second, "the other shards to take 100 publishes while paused", func() bool { return f.answered() >= n+100 })
	victim.Resume()
	f.waitHealth(http.StatusOK, "", 20*time.Second)
	close(stop)
	ok, failed := done()
	t.Logf("publishes: %d answered 201, %d not", ok, failed)
	f.checkNothingLost()
}

// TestClusterKilledSubscriptionIsCaughtUp kills only the node's pub/sub
// connections (CLIENT KILL TYPE pubsub on every master: publishing goes
// on), as in centrifugo #1189: the node notices, subscribes again, catches
// up, and nothing answered 201 is lost; /stats shows why the links went
// down.
func TestClusterKilledSubscriptionIsCaughtUp(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster")
	f := newClusterFixture(t, 5*time.Second)
	stop := make(chan struct{})
	done := f.publishLoop(stop)
	ctx := context.Background()
	for range 3 {
		n := f.answered()
		tstest.WaitFor(t, 10*time.Second, "100 more publishes", func() bool { return f.answered() >= n+100 })
		for _, n := range f.cluster.Nodes {
			if err := n.Client().ClientKillByFilter(ctx, "TYPE", "pubsub").Err(); err != nil {
				t.Fatal(err)
			}
		}
		f.waitHealth(http.StatusOK, "", 10*time.Second)
	}
	n := f.answered()
	tstest.WaitFor(t, 10*time.Second, "100 publishes after the last kill", func() bool { return f.answered() >= n+100 })
	close(stop)
	ok, failed := done()
	t.Logf("publishes: %d answered 201, %d not", ok, failed)
	f.checkNothingLost()
	links := f.links()
	withErr := 0
	for _, l := range links {
		if l["last_error"] != nil {
			withErr++
		}
	}
	if len(links) != 3 || withErr == 0 {
		t.Errorf("/stats links %v: want 3 links, those that were killed with last_error", links)
	}
}

// TestClusterBatchAnswersPerEvent posts a JSON batch over every shard
// while one master is down (not yet replaced): 207, with 201 and an id for
// the live shards' events and 503 for the dead shard's; only the 201s are
// delivered.
func TestClusterBatchAnswersPerEvent(t *testing.T) {
	tstest.Long(t, "starts a Redis Cluster")
	f := newClusterFixture(t, 60*time.Second)
	victim := f.cluster.MasterOf(f.prefix + "{c0}:h")
	onVictim := map[string]bool{}
	var events []string
	for _, ch := range f.channels {
		onVictim[ch] = f.cluster.MasterOf(f.prefix+"{"+ch+"}:h") == victim
		events = append(events, fmt.Sprintf(`{"channel":%q,"data":"batch-%s"}`, ch, ch))
	}
	f.cluster.Kill(victim)
	code, out := do(t, "POST", f.base+"/pub", map[string]string{"Content-Type": "application/json"}, `{"events":[`+strings.Join(events, ",")+`]}`)
	if code != http.StatusMultiStatus {
		t.Fatalf("batch over a dead shard: %d %v, want 207", code, out)
	}
	results, _ := out["events"].([]any)
	if len(results) != len(f.channels) {
		t.Fatalf("%d results for %d events: %v", len(results), len(f.channels), out)
	}
	for i, r := range results {
		m, _ := r.(map[string]any)
		ch := f.channels[i]
		status, _ := m["status"].(float64)
		switch {
		case onVictim[ch] && (status != 503 || m["id"] != nil || m["error"] == nil):
			t.Errorf("%s on the dead shard: %v, want status 503 with an error and no id", ch, m)
		case !onVictim[ch] && (status != 201 || m["id"] == nil):
			t.Errorf("%s on a live shard: %v, want status 201 with an id", ch, m)
		}
	}
	for _, ch := range f.channels {
		if onVictim[ch] {
			continue
		}
		if ev := f.streams[ch].next(5 * time.Second); string(ev.Data) != "batch-"+ch {
			t.Errorf("%s: got %q, want the batch's event", ch, ev.Data)
		}
	}
}
