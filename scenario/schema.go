package scenario

import (
	"fmt"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/darktime/darktime/internal/nchanconf"
)

// Version is the schema version this package reads.
const Version = 1

// Scenario is one experiment. Parse fills in every default, so a runner
// reads the values as they are; scenarios/README.md documents each field.
type Scenario struct {
	Version     int    `yaml:"version"`
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`

	// Target is the system under test; CompareWith, when set, is a second
	// one that gets the same clients, publishers, phases and thresholds
	// after it (never at the same time: they would share the machine), and
	// the report shows both side by side.
	Target      Target  `yaml:"target"`
	CompareWith *Target `yaml:"compare_with,omitempty"`

	Clients    Clients    `yaml:"clients"`
	Publishers Publishers `yaml:"publishers"`
	Phases     []Phase    `yaml:"phases"`
	Shadow     *Shadow    `yaml:"shadow,omitempty"`
	Faults     []Fault    `yaml:"faults,omitempty"`
	// Thresholds are report gates, "METRIC OP NUMBER" or
	// "METRIC[WINDOW] OP NUMBER", each written as the gate or as a
	// mapping with abort_on_fail (threshold.go).
	Thresholds []Threshold `yaml:"thresholds,omitempty"`
	Outputs    Outputs     `yaml:"outputs"`
	Limits     Limits      `yaml:"limits"`
}

// Brokers of an embedded target: the in-process broker, one private
// redis-server, or a private Redis Cluster (redis.shards masters with
// redis.replicas replicas each) the runner starts.
const (
	BrokerMemory       = "memory"
	BrokerRedis        = "redis"
	BrokerRedisCluster = "redis-cluster"
)

// Profiles of a target.
const (
	ProfileDarktime      = "darktime"
	ProfileNchan         = "nchan"
	ProfileDarktimeHooks = "darktime-hooks"
)

// StartNchan is the one external server the runner knows how to start:
// nginx with nchan, from the repository's nchan-nginx.conf (embedded in
// the binary: internal/nchanconf).
const StartNchan = "nchan"

// NchanURL is where nchan-nginx.conf listens.
const NchanURL = "http://" + nchanconf.Addr

// Target is either embedded (darktime starts Nodes reference servers on
// loopback) or external (URL or URLs of servers already running, or
// Start: nchan, which the runner starts).
type Target struct {
	// Label names the target in reports (default "primary", or
	// "compare" for CompareWith).
	Label string `yaml:"label,omitempty"`

	// Embedded.
	Broker  string `yaml:"broker,omitempty"`
	Nodes   int    `yaml:"nodes,omitempty"`
	Workers int    `yaml:"workers,omitempty"`
	Redis   *Redis `yaml:"redis,omitempty"`
	// Auth is the servers' --auth file (channel rules and JWT key: see
	// examples/server-auth.yaml), relative to the scenario file.
	Auth string `yaml:"auth,omitempty"`

	// External.
	URL   string   `yaml:"url,omitempty"`
	URLs  []string `yaml:"urls,omitempty"`
	Start string   `yaml:"start,omitempty"`

	Profile string `yaml:"profile,omitempty"`
}

// Embedded reports whether darktime starts the target's servers itself.
func (t Target) Embedded() bool { return t.URL == "" && len(t.URLs) == 0 && t.Start == "" }

// StartsRedis reports whether the runner starts a Redis for the target:
// one server (broker: redis) or a cluster (broker: redis-cluster).
func (t Target) StartsRedis() bool {
	return t.Embedded() && (t.Broker == BrokerRedis || t.Broker == BrokerRedisCluster)
}

// Redis configures the Redis an embedded target starts: one server, or
// with broker: redis-cluster a cluster of them.
type Redis struct {
	Persistence string `yaml:"persistence,omitempty"` // none | aof (on every node of a cluster)
	// Cluster only. Shards is how many masters share the 16384 slots
	// (default 3, a Redis Cluster's least), Replicas how many replicas
	// each master has (default 1; 0 leaves a killed master's slots
	// unserved), NodeTimeout the cluster-node-timeout: how long a master
	// may be unreachable before a replica takes over (default 2s; Redis's
	// own default, 15s, would make every failover a long outage).
	Shards      int      `yaml:"shards,omitempty"`
	Replicas    *int     `yaml:"replicas,omitempty"`
	NodeTimeout Duration `yaml:"node_timeout,omitempty"`
}

// ReplicasPerShard is Replicas, 0 when unset.
func (r *Redis) ReplicasPerShard() int {
	if r == nil || r.Replicas == nil {
		return 0
	}
	return *r.Replicas
}

// Clients is the swarm of EventSource clients.
type Clients struct {
	Count        int     `yaml:"count"`
	Ramp         float64 `yaml:"ramp,omitempty"`
	Channels     int     `yaml:"channels,omitempty"`
	Distribution string  `yaml:"distribution,omitempty"`
	Churn        string  `yaml:"churn,omitempty"`
	Sources      int     `yaml:"sources,omitempty"`
	Procs        int     `yaml:"procs,omitempty"`
	// Token mints a JWT per client for private channels (swarm.TokenConfig).
	Token *Token `yaml:"token,omitempty"`
}

// Token is how the clients mint their tokens: the key from SecretEnv
// (an HMAC secret) or KeyFile (a PEM private key or a secret file,
// relative to the scenario file), Algorithm (the key's default) and TTL
// (1h).
type Token struct {
	SecretEnv string   `yaml:"secret_env,omitempty"`
	KeyFile   string   `yaml:"key_file,omitempty"`
	Algorithm string   `yaml:"algorithm,omitempty"`
	TTL       Duration `yaml:"ttl,omitempty"`
}

// Publishers publish Rate events/s over all channels.
type Publishers struct {
	Rate     float64 `yaml:"rate"`
	Pacing   string  `yaml:"pacing,omitempty"`
	Size     int     `yaml:"size,omitempty"`
	Endpoint string  `yaml:"endpoint,omitempty"` // pub | hooks
	// InFlight bounds the publish requests in flight, and so the
	// publishers' connections to the nodes (swarm.Config.Publishers;
	// default vegeta's up to 10,000, which a stall of the machine opens).
	InFlight int `yaml:"in_flight,omitempty"`
}

// Publish endpoints.
const (
	EndpointPub   = "pub"
	EndpointHooks = "hooks"
)

// Phase is a stretch of the run with its own publish rate. Rate is in
// events/s; RateMultiplier scales Publishers.Rate instead. With
// HotChannel set, the phase's rate goes to that one channel (0 is the
// hottest under a zipf distribution) on top of the others, which keep
// Publishers.Rate.
type Phase struct {
	Name           string   `yaml:"name"`
	Duration       Duration `yaml:"duration"`
	Rate           float64  `yaml:"rate,omitempty"`
	RateMultiplier float64  `yaml:"rate_multiplier,omitempty"`
	HotChannel     *int     `yaml:"hot_channel,omitempty"`
}

// Shadow puts the shadow proxy in front of the target: Percent of the
// users (two decimals at most) are diverted or mirrored to Candidate,
// "embedded" (one more reference server the runner starts) or a URL.
type Shadow struct {
	Percent   float64 `yaml:"percent"`
	Mode      string  `yaml:"mode"`
	Candidate string  `yaml:"candidate"`
	// Defect, for the embedded candidate, is injected into its streams
	// (internal/defect: "drop=0.1%", "delay=40ms", "tail=2%:25ms").
	Defect string `yaml:"defect,omitempty"`
	// Canary is a rollout plan (darktime canary's file, relative to the
	// scenario; its admin: is replaced by the run's proxies), run from
	// the first publish. Expect is the outcome the run must end with:
	// promoted (default) or rolled_back, a gate.
	Canary string `yaml:"canary,omitempty"`
	Expect string `yaml:"expect,omitempty"`
}

// Shadow modes and the embedded candidate.
const (
	ModeDivert        = "divert"
	ModeMirror        = "mirror"
	CandidateEmbedded = "embedded"
	ExpectPromoted    = "promoted"
	ExpectRolledBack  = "rolled_back"
)

// Fault happens At an offset from the start of the first phase and is
// exactly one action.
type Fault struct {
	At           Duration `yaml:"at"`
	KillNode     *int     `yaml:"kill_node,omitempty"`
	PauseNode    *int     `yaml:"pause_node,omitempty"`
	For          Duration `yaml:"for,omitempty"`
	RestartRedis bool     `yaml:"restart_redis,omitempty"`
	// KillRedisMaster SIGKILLs a master of the Redis Cluster: the one
	// serving shard Shard's slots (shards are numbered by their lowest
	// slot, from 0) or, without Shard, the one serving the hottest
	// channel (the phase's hot_channel, else channel 0).
	KillRedisMaster bool `yaml:"kill_redis_master,omitempty"`
	Shard           *int `yaml:"shard,omitempty"`
	// KillRedisLink closes that node's pub/sub connections on the Redis
	// side (CLIENT KILL), and no other of its connections: publishing
	// goes on (centrifugo #1189).
	KillRedisLink *int           `yaml:"kill_redis_link,omitempty"`
	SlowConsumers *SlowConsumers `yaml:"slow_consumers,omitempty"`
	Storm         bool           `yaml:"storm,omitempty"`
}

// Kind names the fault's action ("kill_node", "storm", ...), or "" when
// it has none.
func (f Fault) Kind() string {
	for _, k := range f.kinds() {
		return k
	}
	return ""
}

func (f Fault) kinds() []string {
	var k []string
	add := func(set bool, name string) {
		if set {
			k = append(k, name)
		}
	}
	add(f.KillNode != nil, "kill_node")
	add(f.PauseNode != nil, "pause_node")
	add(f.RestartRedis, "restart_redis")
	add(f.KillRedisMaster, "kill_redis_master")
	add(f.KillRedisLink != nil, "kill_redis_link")
	add(f.SlowConsumers != nil, "slow_consumers")
	add(f.Storm, "storm")
	return k
}

// SlowConsumers turns Count clients into readers that wait ReadDelay
// before each read.
type SlowConsumers struct {
	Count     int      `yaml:"count"`
	ReadDelay Duration `yaml:"read_delay"`
}

// Outputs says where the report goes. Dir defaults to results/NAME; the
// file names are relative to it, and an empty one is not written (JSON
// defaults to report.json).
type Outputs struct {
	Dir   string `yaml:"dir,omitempty"`
	HTML  string `yaml:"html,omitempty"`
	JUnit string `yaml:"junit,omitempty"`
	JSON  string `yaml:"json,omitempty"`
}

// Limits bound the run.
type Limits struct {
	MaxDuration Duration `yaml:"max_duration"`
}

// Duration is a time.Duration written as in Go ("90s", "1m30s").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalYAML writes the duration as Go does ("1m30s").
func (d Duration) MarshalYAML() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(b []byte) error {
	var s string
	if err := yaml.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: want a number with a unit, like 30s, 5m or 1m30s", s)
	}
	return v, nil
}
