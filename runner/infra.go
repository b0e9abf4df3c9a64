package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/darktime/darktime/internal/nchanconf"
	"github.com/darktime/darktime/internal/redisproc"
	"github.com/darktime/darktime/scenario"
)

// readyTimeout bounds the start of one child process.
const readyTimeout = 15 * time.Second

// cluster is what one target run started: Redis, the server nodes, nginx,
// the shadow proxies and their candidate.
type cluster struct {
	r    *Runner
	t    scenario.Target
	dir  string // the target's folder
	http *http.Client

	mu sync.Mutex // guards killed

	redis    *proc
	rc       *redisCluster // broker: redis-cluster
	redisURL string
	nodes    []*proc
	nodeURLs []string
	// killed marks nodes a fault killed: their counters are gone.
	killed    map[int]bool
	nginx     *proc
	candidate *proc
	candURL   string
	proxies   []*proc
	proxyURLs []string
	adminURLs []string // the proxies' admin API
	// stopDefect stops the defect in front of the candidate (shadow.defect).
	stopDefect func()
	ledgers    []string // the proxies' ledger files
}

// start brings the target up; on error what started is stopped.
func (c *cluster) start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if err := os.MkdirAll(filepath.Join(c.dir, "logs"), 0o755); err != nil {
		return err
	}
	c.killed = map[int]bool{}
	t := c.t
	switch {
	case t.Embedded():
		switch t.Broker {
		case scenario.BrokerRedis:
			err = c.startRedis(ctx)
		case scenario.BrokerRedisCluster:
			err = c.startRedisCluster(ctx)
		}
		if err != nil {
			return err
		}
		for i := range t.Nodes {
			p, url, err := c.startNode(ctx, c.nodeName(i), c.redisURL, t.Workers, t.Auth)
			if err != nil {
				return err
			}
			c.nodes = append(c.nodes, p)
			c.nodeURLs = append(c.nodeURLs, url)
		}
	case t.Start == scenario.StartNchan:
		if err := c.startNchan(ctx); err != nil {
			return err
		}
	default:
		c.nodeURLs = append(c.nodeURLs, t.URLs...)
		if t.URL != "" {
			c.nodeURLs = append(c.nodeURLs, t.URL)
		}
	}
	if sh := c.r.s.Shadow; sh != nil && c.t.Label == c.r.s.Target.Label {
		if err := c.startShadow(ctx, sh); err != nil {
			return err
		}
	}
	return nil
}

// targets are the URLs the swarm's clients and publishers use.
func (c *cluster) targets() []string {
	if len(c.proxyURLs) > 0 {
		return c.proxyURLs
	}
	return c.nodeURLs
}

// stop stops everything, proxies first (they write their ledgers).
func (c *cluster) stop() {
	for _, p := range c.proxies {
		_ = p.stop(syscall.SIGTERM, 15*time.Second)
	}
	if c.stopDefect != nil {
		c.stopDefect()
		c.stopDefect = nil
	}
	if c.candidate != nil {
		_ = c.candidate.stop(syscall.SIGTERM, 5*time.Second)
	}
	for _, n := range c.nodes {
		_ = n.stop(syscall.SIGTERM, 5*time.Second)
	}
	if c.nginx != nil {
		_ = c.nginx.stop(syscall.SIGQUIT, 5*time.Second)
	}
	if c.redis != nil {
		_ = c.redis.stop(syscall.SIGTERM, 10*time.Second)
	}
	if c.rc != nil {
		c.rc.stop()
	}
}

func (c *cluster) startRedis(ctx context.Context) error {
	bin, err := redisproc.Binary()
	if err != nil {
		return fmt.Errorf("broker: redis needs %w", err)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	dir := filepath.Join(c.dir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c.redis = &proc{
		name: "redis-server", path: bin, log: logPath(c.dir, "redis"),
		args: redisproc.Args(redisproc.Options{Port: port, Dir: dir,
			AppendOnly: c.t.Redis != nil && c.t.Redis.Persistence == "aof", Fsync: "everysec"}),
	}
	c.redisURL = "redis://" + addr + "/0"
	if err := c.redis.start(); err != nil {
		return err
	}
	return c.redis.waitReady(ctx, readyTimeout, redisPing(addr))
}

func redisPing(addr string) func() error {
	return func() error { return redisproc.Ping(addr) }
}

// restartRedis stops Redis the way an operator restarts it (SIGTERM: it
// writes its append-only file and exits) and starts it again on the same
// port and folder.
func (c *cluster) restartRedis(ctx context.Context) error {
	if c.redis == nil {
		return errors.New("no Redis was started")
	}
	if err := c.redis.stop(syscall.SIGTERM, 10*time.Second); err != nil {
		return err
	}
	addr := c.redisAddr()
	var err error
	for range 50 { // the old socket may linger a moment
		if err = c.redis.start(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	return c.redis.waitReady(ctx, readyTimeout, redisPing(addr))
}

// redisAddr is the address of the one Redis of broker: redis.
func (c *cluster) redisAddr() string {
	return strings.TrimSuffix(strings.TrimPrefix(c.redisURL, "redis://"), "/0")
}

// startNode starts one reference server node; its Redis connections are
// named after it (clientName).
func (c *cluster) startNode(ctx context.Context, name, redisURL string, workers int, authFile string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"server", "--listen", addr, "--node-id", name, "--log-level", "warn"}
	if redisURL != "" {
		args = append(args, "--redis", withClientName(redisURL, clientName(name)))
		if workers > 0 {
			args = append(args, "--workers", strconv.Itoa(workers))
		}
	}
	if authFile != "" {
		args = append(args, "--auth", authFile)
	}
	p := &proc{name: "node " + name, path: c.r.bin, args: args, env: c.r.cfg.Env, log: logPath(c.dir, name)}
	if err := p.start(); err != nil {
		return nil, "", err
	}
	url := "http://" + addr
	err = p.waitReady(ctx, readyTimeout, func() error {
		_, err := httpGet(ctx, c.http, url+"/stats")
		return err
	})
	if err != nil {
		_ = p.kill()
		return nil, "", err
	}
	return p, url, nil
}

// startNchan runs nginx + nchan from the repository's nchan-nginx.conf
// (embedded: internal/nchanconf), on its port when that is free and on
// another otherwise.
func (c *cluster) startNchan(ctx context.Context) error {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		return errors.New("start: nchan needs nginx, which is not on PATH: " + nchanconf.InstallHint)
	}
	module := nchanconf.Module()
	if module == "" {
		return fmt.Errorf("start: nchan needs the nchan module (%s): %s", nchanconf.Modules[0], nchanconf.InstallHint)
	}
	dir, err := filepath.Abs(filepath.Join(c.dir, "nginx"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	addr := nchanconf.Addr
	if !portFree(addr) {
		port, err := freePort()
		if err != nil {
			return err
		}
		newAddr := "127.0.0.1:" + strconv.Itoa(port)
		c.r.log.Warn("the nchan port is taken; nginx listens on another", "taken", addr, "addr", newAddr)
		addr = newAddr
	}
	text, err := nchanconf.Render(nchanconf.Options{Dir: dir, Module: module, Listen: addr})
	if err != nil {
		return fmt.Errorf("start: nchan: %w", err)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	c.nginx = &proc{
		name: "nginx", path: nginx, log: logPath(c.dir, "nginx"),
		args: []string{"-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log")},
	}
	if err := c.nginx.start(); err != nil {
		return err
	}
	c.nodeURLs = []string{"http://" + addr}
	return c.nginx.waitReady(ctx, readyTimeout, func() error {
		_, err := httpGet(ctx, c.http, "http://"+addr+"/")
		return err
	})
}

// shadowFile is the part of the shadow proxy's config file the runner
// writes.
type shadowFile struct {
	Listen    string        `yaml:"listen"`
	Admin     string        `yaml:"admin"`
	Primary   string        `yaml:"primary"`
	Candidate string        `yaml:"candidate"`
	Mode      string        `yaml:"mode"`
	Percent   float64       `yaml:"percent"`
	Key       shadowKey     `yaml:"key"`
	Routes    []shadowRoute `yaml:"routes"`
	Ledger    shadowLedger  `yaml:"ledger"`
}

type shadowKey struct {
	From string `yaml:"from"`
	Name string `yaml:"name"`
}

type shadowRoute struct {
	Path         string  `yaml:"path"`
	Mode         string  `yaml:"mode"`
	Percent      float64 `yaml:"percent"`
	MirrorUnsafe bool    `yaml:"mirror_unsafe,omitempty"`
}

type shadowLedger struct {
	File string `yaml:"file"`
}

// UserKey is the query parameter that carries the swarm's client number
// to the shadow proxy, which selects users by it.
const UserKey = "uid"

// startShadow starts the candidate (when embedded) and one shadow proxy
// per primary node: streams of the selected users are diverted or
// mirrored; every publish is mirrored, so the candidate sees every event.
func (c *cluster) startShadow(ctx context.Context, sh *scenario.Shadow) error {
	c.candURL = sh.Candidate
	if sh.Candidate == scenario.CandidateEmbedded {
		// The candidate runs the primary's auth config: the same private
		// channels, the same tokens.
		p, url, err := c.startNode(ctx, "candidate", "", 0, c.t.Auth)
		if err != nil {
			return err
		}
		c.candidate, c.candURL = p, url
	}
	candidate, err := c.startDefect(sh)
	if err != nil {
		return err
	}
	for i, primary := range c.nodeURLs {
		listen, err := freePort()
		if err != nil {
			return err
		}
		admin, err := freePort()
		if err != nil {
			return err
		}
		name := fmt.Sprintf("shadow-%d", i)
		ledger := filepath.Join(c.dir, name+"-ledger.json")
		cfg := shadowFile{
			Listen: "127.0.0.1:" + strconv.Itoa(listen), Admin: "127.0.0.1:" + strconv.Itoa(admin),
			Primary: primary, Candidate: candidate, Mode: "off",
			Key: shadowKey{From: "query", Name: UserKey},
			Routes: []shadowRoute{
				{Path: "/sub/", Mode: sh.Mode, Percent: sh.Percent},
				{Path: "/pub", Mode: scenario.ModeMirror, Percent: 100, MirrorUnsafe: true},
			},
			Ledger: shadowLedger{File: ledger},
		}
		b, err := yaml.Marshal(cfg)
		if err != nil {
			return err
		}
		file := filepath.Join(c.dir, name+".yaml")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			return err
		}
		p := &proc{name: name, path: c.r.bin, args: []string{"shadow", "--config", file, "--log-level", "warn"}, env: c.r.cfg.Env, log: logPath(c.dir, name)}
		if err := p.start(); err != nil {
			return err
		}
		adminURL := "http://" + cfg.Admin + "/_darktime/healthz"
		if err := p.waitReady(ctx, readyTimeout, func() error {
			_, err := httpGet(ctx, c.http, adminURL)
			return err
		}); err != nil {
			return err
		}
		c.proxies = append(c.proxies, p)
		c.proxyURLs = append(c.proxyURLs, "http://"+cfg.Listen)
		c.adminURLs = append(c.adminURLs, "http://"+cfg.Admin)
		c.ledgers = append(c.ledgers, ledger)
	}
	return nil
}
