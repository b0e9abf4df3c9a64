package scenario

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/darktime/darktime/internal/nchanconf"
	"github.com/darktime/darktime/swarm/params"
)

// Options tune the checks that look at this machine rather than at the
// file. The zero value checks against the machine it runs on.
type Options struct {
	// SkipBinaries skips looking for the programs a scenario needs
	// (nginx and nchan for start: nchan, redis-server for broker: redis):
	// for tests, and for checking scenarios meant for another machine.
	SkipBinaries bool
	// LookPath finds a program (default exec.LookPath).
	LookPath func(file string) (string, error)
	// FileLimit is how many files one process may open (default this
	// machine's hard RLIMIT_NOFILE, which darktime raises the soft one to).
	FileLimit int
	// EphemeralPorts is how many client ports one source address has
	// (default the size of net.ipv4.ip_local_port_range, else 28,232).
	EphemeralPorts int
	// Overrides change the scenario before it is checked.
	Overrides Overrides
	// AllowSpecialFiles lets LoadFile read a FIFO, a pipe or a device
	// (internal/inputfile); by default only regular files are read.
	AllowSpecialFiles bool
	// CheckCanary, when set, checks the rollout plan shadow.canary names
	// (its path resolved against the scenario's folder): darktime run
	// gives canary's parser, which this package does not link.
	CheckCanary func(ctx context.Context, path string) error
}

// fdHeadroom is what a process needs besides its connections: listeners,
// logs, Redis, the Go runtime.
const fdHeadroom = 64

// nchanMaxConns is worker_connections in nchan-nginx.conf.
const nchanMaxConns = nchanconf.MaxConns

func (o Options) fileLimit() int {
	if o.FileLimit > 0 {
		return o.FileLimit
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Max > 1<<30 {
		return 1 << 30
	}
	return int(lim.Max)
}

func (o Options) ephemeralPorts() int {
	if o.EphemeralPorts > 0 {
		return o.EphemeralPorts
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && hi >= lo {
				return hi - lo + 1
			}
		}
	}
	return 28_232
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// machine checks what this machine allows: open files per process,
// ephemeral ports per source address and the programs the targets need.
func (v *validator) machine() {
	s := v.s
	c := &s.Clients
	files := v.opts.fileLimit()
	ports := v.opts.ephemeralPorts()

	if per := ceilDiv(c.Count, c.Procs); per+fdHeadroom > files {
		need := ceilDiv(c.Count, files-fdHeadroom)
		v.errorf("clients.count", "%d clients in %d swarm process(es) need %d open files each, but a process here may open at most %d: set clients.procs: %d (each process holds its share) or raise the hard limit (ulimit -Hn, LimitNOFILE=)",
			c.Count, c.Procs, per+fdHeadroom, files, need)
	}
	for _, t := range v.targets() {
		switch {
		case t.t.Embedded():
			if per := ceilDiv(c.Count, t.t.Nodes); per+fdHeadroom > files {
				v.errorf("clients.count", "%d clients on %d node(s) of %s is %d connections per server process, but a process here may open at most %d files: set %s.nodes: %d with broker: redis, or raise the hard limit (ulimit -Hn)",
					c.Count, t.t.Nodes, t.path, per, files, t.path, ceilDiv(c.Count, files-fdHeadroom))
			}
		case t.t.Start == StartNchan:
			if c.Count > nchanMaxConns {
				v.errorf("clients.count", "%d clients: nchan-nginx.conf (%s) allows %d connections per nginx worker", c.Count, t.path, nchanMaxConns)
			}
		}
	}
	if sh := s.Shadow; sh != nil {
		mirrored := int(float64(c.Count) * sh.Percent / 100)
		if need := 2*c.Count + mirrored + fdHeadroom; need > files {
			v.errorf("shadow", "the shadow proxy holds two sockets per client and one more per mirrored or diverted one: %d open files for %d clients, but a process here may open at most %d: use fewer clients or raise the hard limit (ulimit -Hn)",
				need, c.Count, files)
		}
		if up := c.Count + mirrored; up > ports {
			v.errorf("shadow", "the shadow proxy opens %d upstream connections from one address, which has about %d ephemeral ports: use fewer clients", up, ports)
		}
	}

	loopback := true
	for _, t := range v.targets() {
		loopback = loopback && isLoopback(t.t)
	}
	switch {
	case loopback:
		if c.Sources == 0 {
			c.Sources = ceilDiv(c.Count, params.MaxConnsPerSource)
		}
		if per := ceilDiv(c.Count, c.Sources); per > ports {
			v.errorf("clients.sources", "%d source address(es) for %d clients is %d connections per address, but an address has about %d ephemeral ports: set clients.sources: %d or more (127.0.0.2 on)",
				c.Sources, c.Count, per, ports, ceilDiv(c.Count, ports))
		}
	case v.has("clients.sources"):
		v.errorf("clients.sources", "sources spread clients over 127.0.0.2..: only for a target on loopback")
	case c.Count > ports:
		v.errorf("clients.count", "%d clients from one source address, which has about %d ephemeral ports: run the swarm from several machines (a remote target cannot use clients.sources)", c.Count, ports)
	}

	if v.opts.SkipBinaries {
		return
	}
	look := v.opts.LookPath
	if look == nil {
		look = exec.LookPath
	}
	for _, t := range v.targets() {
		switch {
		case t.t.Start == StartNchan:
			if _, err := look("nginx"); err != nil {
				v.errorf(t.path+".start", "start: nchan needs nginx, which is not on PATH: %s", nchanconf.InstallHint)
			} else if nchanconf.Module() == "" {
				v.errorf(t.path+".start", "start: nchan needs the nchan module (%s): %s", nchanconf.Modules[0], nchanconf.InstallHint)
			}
		case t.t.StartsRedis():
			if _, err := look("redis-server"); err != nil {
				v.errorf(t.path+".broker", "broker: %s needs redis-server, which is not on PATH: apt-get install -y redis-server (or make deps)", t.t.Broker)
			} else if _, err := look("redis-cli"); err != nil && t.t.Broker == BrokerRedisCluster {
				v.errorf(t.path+".broker", "broker: redis-cluster needs redis-cli (it creates the cluster), which is not on PATH: apt-get install -y redis-server (or make deps)")
			}
		}
	}
}

// isLoopback reports whether every server of t is on loopback (so the
// swarm can spread its clients over 127.0.0.2.. source addresses).
func isLoopback(t *Target) bool {
	if t.Embedded() {
		return true
	}
	urls := t.URLs
	if t.URL != "" {
		urls = append(urls, t.URL)
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			return false
		}
		host := u.Hostname()
		if host == "localhost" {
			continue
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
			return false
		}
	}
	return true
}

// Summary is one line about a checked scenario.
func (s *Scenario) Summary() string {
	t := s.Target
	var target string
	switch {
	case t.Embedded():
		target = fmt.Sprintf("%d %s node(s)", t.Nodes, t.Broker)
		if t.Broker == BrokerRedisCluster && t.Redis != nil {
			target += fmt.Sprintf(" (%d shards, %d replica(s) each)", t.Redis.Shards, t.Redis.ReplicasPerShard())
		}
	case t.Start != "":
		target = "nchan (started)"
	default:
		target = t.Profile + " at " + strings.Join(append(append([]string(nil), t.URLs...), t.URL), " ")
		target = strings.TrimSpace(target)
	}
	if s.CompareWith != nil {
		target += " vs " + s.CompareWith.Label
	}
	return fmt.Sprintf("%s: %d clients, %d phase(s) over %v, %d fault(s), %d threshold(s), %s; about %v, limit %v",
		s.Name, s.Clients.Count, len(s.Phases), s.RunLength(), len(s.Faults), len(s.Thresholds), target, s.Planned(), s.Limits.MaxDuration)
}
