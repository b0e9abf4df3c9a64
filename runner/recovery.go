package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/darktime/darktime/internal/redisproc"
	"github.com/darktime/darktime/report"
	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/server/statsfile"
)

// watchEvery is how often a recovery watch polls the nodes (and the
// Redis Cluster): short enough to see a node answer 503 for a few tens of
// milliseconds.
const watchEvery = 25 * time.Millisecond

// watch is one recovery watch after a fault at At: it polls every live
// node's /healthz and /stats until each is whole — /healthz 200 and
// nodeWhole of its /stats — and, with redisProblem, until the Redis side
// says no problem ("") too.
type watch struct {
	At           time.Time
	redisProblem func(ctx context.Context) string
	nodeWhole    func(n int, st server.Stats) bool
}

// nodeSeen is what a watch saw of one node.
type nodeSeen struct {
	n                   int
	sick                int // /healthz answers other than 200
	firstSick, lastSick time.Time
	reason              string // the first 503's reasons
	wholeSince          time.Time
}

// result of a watch: the recovery, and what it saw, in words.
type watched struct {
	rec     *report.Recovery
	redisAt time.Time // when the Redis side was whole (zero: never, or not watched)
	// downFrom, downTo: the first and last poll at which a Redis node
	// said cluster_state:fail (every slot refused, CLUSTERDOWN).
	downFrom, downTo time.Time
	nodes            []*nodeSeen
}

// run watches until the target is whole or ctx ends.
func (w watch) run(ctx context.Context, c *cluster, nodes []int) watched {
	res := watched{}
	for _, n := range nodes {
		res.nodes = append(res.nodes, &nodeSeen{n: n})
	}
	client := &http.Client{Timeout: time.Second}
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		now := time.Now()
		if w.redisProblem != nil && res.redisAt.IsZero() {
			switch why := w.redisProblem(ctx); {
			case why == "":
				res.redisAt = now
			case strings.Contains(why, "cluster_state:fail"):
				if res.downFrom.IsZero() {
					res.downFrom = now
				}
				res.downTo = now
			}
		}
		var wg sync.WaitGroup
		for _, ns := range res.nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.pollNode(ctx, client, ns, now, w.nodeWhole)
			}()
		}
		wg.Wait()
		whole := w.redisProblem == nil || !res.redisAt.IsZero()
		for _, ns := range res.nodes {
			whole = whole && !ns.wholeSince.IsZero()
		}
		if whole {
			res.rec = &report.Recovery{After: now.Sub(w.At), Done: true}
			return res
		}
		select {
		case <-ctx.Done():
			res.rec = &report.Recovery{After: time.Since(w.At)}
			return res
		case <-t.C:
		}
	}
}

// pollNode takes one look at node ns.n.
func (c *cluster) pollNode(ctx context.Context, client *http.Client, ns *nodeSeen, now time.Time, nodeWhole func(int, server.Stats) bool) {
	url := c.nodeURLs[ns.n]
	code, reasons := healthz(ctx, client, url)
	if code != http.StatusOK {
		ns.sick++
		if ns.firstSick.IsZero() {
			ns.firstSick, ns.reason = now, reasons
		}
		ns.lastSick = now
		ns.wholeSince = time.Time{}
		return
	}
	b, err := httpGet(ctx, client, url+"/stats")
	if err != nil {
		ns.wholeSince = time.Time{}
		return
	}
	st, err := report.ReadStats(bytesReader(b))
	if err != nil || !nodeWhole(ns.n, st) {
		ns.wholeSince = time.Time{}
		return
	}
	if ns.wholeSince.IsZero() {
		ns.wholeSince = now
	}
}

// healthz is GET /healthz's status and reasons (the error, when it did
// not answer).
func healthz(ctx context.Context, client *http.Client, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/healthz", nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := client.Do(req)
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

// words says what the watch saw: when the Redis side was whole, and for
// each node whether and how long it answered 503, and when it was whole.
func (w watched) words(at time.Time, redisWhat string) string {
	var parts []string
	if redisWhat != "" {
		if !w.downFrom.IsZero() {
			parts = append(parts, fmt.Sprintf("the cluster refused every slot (cluster_state:fail, CLUSTERDOWN) from %s to %s", since(at, w.downFrom), since(at, w.downTo)))
		}
		if w.redisAt.IsZero() {
			parts = append(parts, redisWhat+": not seen")
		} else {
			parts = append(parts, fmt.Sprintf("%s after %s", redisWhat, since(at, w.redisAt)))
		}
	}
	for _, ns := range w.nodes {
		var s string
		if ns.sick == 0 {
			s = fmt.Sprintf("node %d: /healthz never answered other than 200 (polled every %v)", ns.n, watchEvery)
		} else {
			s = fmt.Sprintf("node %d: /healthz not 200 from %s to %s (%d polls; %s)", ns.n, since(at, ns.firstSick), since(at, ns.lastSick), ns.sick, ns.reason)
		}
		if !ns.wholeSince.IsZero() {
			s += ", whole after " + since(at, ns.wholeSince)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func since(at, t time.Time) string { return "+" + t.Sub(at).Round(time.Millisecond).String() }

// liveNodes are the nodes no fault killed.
func (c *cluster) liveNodes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i := range c.nodes {
		if !c.killed[i] {
			out = append(out, i)
		}
	}
	return out
}

// problem is a watch's Redis side after a master was killed: whole
// ("") when every running node serves all slots and none names a killed
// master.
func (rc *redisCluster) problem(ctx context.Context) string {
	return redisproc.Problem(ctx, rc.running(), rc.gone()...)
}

// noLinkTo is a watch's node side after a master was killed: the node
// has no link to a killed master left.
func (rc *redisCluster) noLinkTo(_ int, st server.Stats) bool {
	gone := rc.gone()
	return !slices.ContainsFunc(st.Links, func(l statsfile.LinkStats) bool { return slices.Contains(gone, l.Addr) })
}
