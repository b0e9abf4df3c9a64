package swarm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

// startAgents runs n agents as goroutines, each serving one run.
func startAgents(t *testing.T, rdb redis.UniversalClient, name string, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a := &Agent{Name: name + strconv.Itoa(i), Redis: rdb, Runs: 1}
			if err := a.Serve(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("agent %d: %v", i, err)
			}
		})
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

func newRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	rs := redistest.Start(t)
	opt, err := redis.ParseURL(rs.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// collectedParts reads back the part results the coordinator merged.
func collectedParts(t *testing.T, rdb redis.UniversalClient, runID string) []*Result {
	t.Helper()
	k := agentKeys{prefix: DefaultAgentPrefix, run: runID}
	raws, err := rdb.LRange(context.Background(), k.collected(), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	var parts []*Result
	for _, raw := range raws {
		var rep agentReport
		if err := json.Unmarshal([]byte(raw), &rep); err != nil {
			t.Fatal(err)
		}
		res, err := ReadResult(bytes.NewReader(rep.Result))
		if err != nil {
			t.Fatalf("part %d from %s: %v", rep.Part, rep.Agent, err)
		}
		parts = append(parts, res)
	}
	return parts
}

func TestRunAgentsMergesExactly(t *testing.T) {
	tstest.Long(t, "agent processes (~4 s)")
	t.Parallel()
	rdb := newRedis(t)
	target := startServer(t, server.Config{})
	const agents = 3
	startAgents(t, rdb, "agent", agents)
	cfg := quickConfig(t, target)
	cfg.Clients, cfg.Channels, cfg.Rate = 60, 6, 60
	cfg.RunID = "agents-exact"
	res, err := RunAgents(context.Background(), cfg, Coordination{Redis: rdb, Agents: agents, JoinTimeout: 10 * time.Second, StartDelay: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if len(res.Parts) != agents || res.Missing() != nil {
		t.Fatalf("parts %+v, missing %v", res.Parts, res.Missing())
	}
	parts := collectedParts(t, rdb, cfg.RunID)
	if len(parts) != agents {
		t.Fatalf("%d part results in Redis, want %d", len(parts), agents)
	}
	var sum ledger.Counts
	counts := map[string]int64{}
	var events, planned int64
	for _, p := range parts {
		tot := p.Ledger.Totals()
		if tot.Credit == 0 {
			t.Errorf("part %v owed nothing", p.Parts)
		}
		sum = sum.Add(tot)
		for name := range p.Histograms {
			h, err := p.Histogram(name)
			if err != nil {
				t.Fatal(err)
			}
			counts[name] += h.TotalCount()
		}
		events += p.Events.Events
		planned += p.Clients.Planned
	}
	if got := res.Ledger.Totals(); got != sum {
		t.Errorf("merged ledger %+v, sum of the parts %+v", got, sum)
	}
	for name, want := range counts {
		h, err := res.Histogram(name)
		if err != nil {
			t.Fatal(err)
		}
		if h.TotalCount() != want {
			t.Errorf("merged histogram %s counts %d, parts %d", name, h.TotalCount(), want)
		}
	}
	if res.Events.Events != events || res.Clients.Planned != planned || planned != int64(cfg.Clients) {
		t.Errorf("merged events %d clients %d; parts %d, %d; run %d clients", res.Events.Events, res.Clients.Planned, events, planned, cfg.Clients)
	}
	// The barrier: the parts started within a fraction of a second.
	first, last := parts[0].Started, parts[0].Started
	for _, p := range parts {
		if p.Started.Before(first) {
			first = p.Started
		}
		if p.Started.After(last) {
			last = p.Started
		}
	}
	if spread := last.Sub(first); spread > 200*time.Millisecond {
		t.Errorf("parts started %v apart", spread)
	}
}

func TestRunAgentsMissingAgent(t *testing.T) {
	tstest.Long(t, "agents that never join or never report: it waits out their timeouts (~12 s)")
	t.Parallel()
	rdb := newRedis(t)
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	cfg.Duration, cfg.Drain = 500*time.Millisecond, 300*time.Millisecond

	// Too few agents: the join times out, naming who came.
	startAgents(t, rdb, "early", 1)
	cfg.RunID = "agents-join"
	_, err := RunAgents(context.Background(), cfg, Coordination{Redis: rdb, Agents: 2, JoinTimeout: time.Second})
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "only 1 of 2") || !strings.Contains(err.Error(), "early0") {
		t.Fatalf("err %v, want only 1 of 2 agents joined, early0", err)
	}

	// An agent that joins and never reports: the others' results come
	// back merged, marked incomplete, and the error names it. (The early
	// agent, whose run was aborted, takes the other ticket.)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		k := agentKeys{prefix: DefaultAgentPrefix}
		kv, err := rdb.BLPop(ctx, 10*time.Second, k.tickets()).Result()
		if err != nil {
			return
		}
		k.run = kv[1]
		n, _ := rdb.Incr(ctx, k.joined()).Result()
		rdb.HSet(ctx, k.agents(), strconv.FormatInt(n-1, 10), "silent")
	}()
	cfg.RunID = "agents-silent"
	res, err := RunAgents(context.Background(), cfg, Coordination{Redis: rdb, Agents: 2, JoinTimeout: 10 * time.Second, StartDelay: 200 * time.Millisecond, ResultTimeout: 10 * time.Second})
	if !errors.Is(err, ErrIncomplete) || !strings.Contains(err.Error(), "agent silent") {
		t.Fatalf("err %v, want agent silent named", err)
	}
	if res == nil || len(res.Parts) != 1 || len(res.Missing()) != 1 {
		t.Fatalf("result %v: want one part present, one missing", res)
	}
	checkBalanced(t, res)
}

func TestRunAgentsBadConfig(t *testing.T) {
	t.Parallel()
	rdb := newRedis(t)
	for _, cfg := range []Config{
		{Channels: 2}, // 3 agents need 3 channels
		{Profile: Profile{Subscribe: "{target}/x"}}, // no {channel}
	} {
		_, err := RunAgents(context.Background(), cfg, Coordination{Redis: rdb, Agents: 3, JoinTimeout: time.Second})
		if !errors.Is(err, ErrConfig) && !errors.Is(err, ErrTemplate) {
			t.Errorf("RunAgents(%+v) = %v, want a config error", cfg, err)
		}
	}
	n, _ := rdb.LLen(context.Background(), DefaultAgentPrefix+"tickets").Result()
	if n != 0 {
		t.Errorf("%d tickets posted for bad runs", n)
	}
}
