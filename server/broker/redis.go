package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/hashslot"
	"github.com/darktime/darktime/internal/redisurl"
)

// Redis layout (Prefix defaults to "darktime:"):
//
//	<prefix>{<channel>}:h        stream: the channel's history, one entry per
//	                             event with field "b" = body; entry ids are
//	                             the event ids. Trimmed to MaxLen and MaxAge,
//	                             expires MaxAge after the last publish.
//	<prefix>{<channel>}:p        pub/sub channel: "<id>\n<body>" per event.
//	<prefix>{<channel>}:k:<key>  idempotency key of a publish (Message.Key).
//
// The braces are a Redis Cluster hash tag: everything of one channel lives in
// one slot, so the publish script is valid in a cluster and, with Sharded,
// the event goes out by SPUBLISH on that slot's shard only.

// publishLua appends one event to its channel's history, trims it, and
// publishes it, atomically, so pub/sub order is id order. Trimming does not
// move max-deleted-entry-id, so the script records the newest trimmed id
// there itself (XSETID): a resume can then tell exactly whether it lost
// events.
const publishLua = `
-- Within one script call, PEXPIRE and XSETID run once per stream, at the
-- end (finish), however many of the call's events went to it.
local touched, last, trimmedTo = {}, {}, {}
local function publish(key, dkey, body, maxlen, maxage, pubch, ttl, pubcmd, now)
  if ttl ~= '0' then
    local prev = redis.call('GET', dkey)
    if prev then return prev end
  end
  -- One forward read gives both the entries the length limit will trim and
  -- the oldest entry that stays (for the age check below).
  local len = redis.call('XLEN', key)
  local drop = math.max(len - maxlen + 1, 0)
  local head = redis.call('XRANGE', key, '-', '+', 'COUNT', drop + 1)
  if drop > 0 then trimmedTo[key] = head[drop][1] end
  local id = redis.call('XADD', key, 'MAXLEN', maxlen, '*', 'b', body)
  local oldest = id
  if #head > drop then oldest = head[drop + 1][1] end
  -- Trim by age only when the oldest entry left is older than the cutoff:
  -- a backward range over a stream full of deleted entries is costly.
  local cutoff = now - maxage
  if tonumber(string.match(oldest, '^(%d+)')) < cutoff then
    local c = string.format('%d', cutoff)
    local old = redis.call('XREVRANGE', key, '(' .. c .. '-0', '-', 'COUNT', 1)
    if #old > 0 then
      trimmedTo[key] = old[1][1]
      redis.call('XTRIM', key, 'MINID', c)
    end
  end
  touched[key] = maxage
  last[key] = id
  if ttl ~= '0' then redis.call('SET', dkey, id, 'PX', ttl) end
  redis.call(pubcmd, pubch, id .. '\n' .. body)
  return id
end
-- finish records, per stream, the newest trimmed id (trimming does not move
-- max-deleted-entry-id, so XSETID does: a resume can then tell exactly
-- whether it lost events) and refreshes the stream's expiry.
local function finish()
  for key, maxage in pairs(touched) do
    if trimmedTo[key] then redis.call('XSETID', key, last[key], 'MAXDELETEDID', trimmedTo[key]) end
    redis.call('PEXPIRE', key, maxage)
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// publishScript publishes one event: KEYS = history, dedupe key; ARGV =
// body, maxlen, maxage ms, pub/sub channel, dedupe ttl ms ("0": none),
// PUBLISH or SPUBLISH.
var publishScript = redis.NewScript(publishLua + `
local id = publish(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6], now)
finish()
return id
`)

// publishBatchScript publishes many events in one call: KEYS = history and
// dedupe key of each event; ARGV = maxlen, maxage ms, PUBLISH, then body,
// pub/sub channel and dedupe ttl of each event. Its keys span slots, so it
// is used only on a single Redis, not a cluster.
var publishBatchScript = redis.NewScript(publishLua + `
local maxlen, maxage, pubcmd = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local ids = {}
for i = 1, #KEYS / 2 do
  local a = 3 + (i - 1) * 3
  ids[i] = publish(KEYS[2 * i - 1], KEYS[2 * i], ARGV[a + 1], maxlen, maxage, ARGV[a + 2], ARGV[a + 3], pubcmd, now)
end
finish()
return ids
`)

// historyScript trims by age, then returns {exists, max-deleted-entry-id,
// now-ms, entries after ARGV[1]}.
var historyScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return {0, '0-0', now, {}} end
local cutoff = string.format('%d', now - tonumber(ARGV[2]))
local old = redis.call('XREVRANGE', key, '(' .. cutoff .. '-0', '-', 'COUNT', 1)
if #old > 0 then
  redis.call('XTRIM', key, 'MINID', cutoff)
  local last = redis.call('XINFO', 'STREAM', key)
  for i = 1, #last, 2 do
    if last[i] == 'last-generated-id' then redis.call('XSETID', key, last[i + 1], 'MAXDELETEDID', old[1][1]) end
  end
end
local info = redis.call('XINFO', 'STREAM', key)
local maxdel = '0-0'
for i = 1, #info, 2 do
  if info[i] == 'max-deleted-entry-id' then maxdel = info[i + 1] end
end
local entries = redis.call('XRANGE', key, '(' .. ARGV[1], '+', 'COUNT', ARGV[3])
return {1, maxdel, now, entries}
`)

// RedisConfig configures the Redis broker.
type RedisConfig struct {
	Config
	// URL is a redis:// or rediss:// URL, or redis+cluster://host:port,…
	// for a Redis Cluster (see internal/redisurl); used when Client is nil.
	URL string
	// Client, if set, is used instead of dialing URL (a *redis.ClusterClient
	// makes it a cluster broker). The broker does not close a client it was
	// given.
	Client redis.UniversalClient
	// Prefix of every key and pub/sub channel (default "darktime:").
	Prefix string
	// Sharded uses SPUBLISH/SSUBSCRIBE (Redis 7 sharded pub/sub), so that
	// in a Redis Cluster each event travels only within its channel's shard.
	// A cluster broker is always sharded, with one pub/sub link per shard.
	Sharded bool
	// Logger receives connection trouble; nil discards it (as every
	// darktime package: the CLI injects its logger).
	Logger *slog.Logger
	// OnError, if set, is called for every pub/sub receive error (the
	// server counts them).
	OnError func(error)
	// ProbeInterval is how often a health probe goes through each pub/sub
	// link (default 1s; negative: no probes, Health then reports link
	// state only); ProbeTimeout is how long a probe may take before the
	// link counts as lagging (default 3s).
	ProbeInterval, ProbeTimeout time.Duration
}

// Redis is the broker for several nodes sharing one Redis (or one Redis
// Cluster with Sharded).
type Redis struct {
	cfg     RedisConfig
	client  redis.UniversalClient
	ownsCli bool
	ps      *redis.PubSub // single Redis: the one pub/sub connection
	cluster *clusterLinks // Redis Cluster: one link per shard
	log     *slog.Logger
	pubCmd  string
	addr    string      // for Links
	linkUp  atomic.Bool // single Redis: the pub/sub connection is subscribed
	ctx     context.Context

	mu      sync.Mutex
	waiters map[string][]chan struct{} // pub/sub channel -> subscribe confirmations awaited
	closed  bool

	// subs is what the receive loop needs to catch up after a lost pub/sub
	// connection, by pub/sub channel name. Subscribe adds, Unsubscribe
	// removes; subsMu is its own lock because the loop takes it for every
	// message.
	subsMu sync.Mutex
	subs   map[string]*redisSub

	probes *prober

	stop   context.CancelFunc
	done   chan struct{}
	probeW sync.WaitGroup
	closeO sync.Once
}

var _ Broker = (*Redis)(nil)

// NewRedis connects to Redis and starts receiving. It fails, naming the
// URL, when Redis cannot be reached within 5 seconds.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Handler == nil {
		return nil, fmt.Errorf("broker: Config.Handler is required")
	}
	cfg.Config = cfg.Config.withDefaults()
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Redis{
		cfg: cfg, client: cfg.Client, log: cfg.Logger, pubCmd: "PUBLISH",
		waiters: map[string][]chan struct{}{}, subs: map[string]*redisSub{}, done: make(chan struct{}),
	}
	if cfg.Sharded {
		r.pubCmd = "SPUBLISH"
	}
	if r.client == nil {
		// No retries: a publish script that Redis ran but could not answer
		// (it died in between) would run twice — one event under two ids.
		// A failed command fails the request (503) and the publisher, who
		// knows, retries; catch-up and resume retry on their own.
		c, err := redisurl.New(cfg.URL, -1)
		if err != nil {
			return nil, fmt.Errorf("redis broker: %w", err)
		}
		r.client = c
		r.ownsCli = true
	}
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		r.cluster = newClusterLinks(cc)
		r.cfg.Sharded, r.pubCmd = true, "SPUBLISH"
	}
	switch c := r.client.(type) {
	case *redis.Client:
		r.addr = c.Options().Addr
	case *redis.ClusterClient:
		r.addr = "cluster"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		if r.ownsCli {
			_ = r.client.Close()
		}
		return nil, fmt.Errorf("redis broker: cannot reach %s: %w", redactURL(cfg.URL), err)
	}
	if err := publishScript.Load(ctx, r.client).Err(); err != nil {
		return nil, fmt.Errorf("redis broker: load publish script: %w", err)
	}
	if r.cfg.ProbeInterval == 0 {
		r.cfg.ProbeInterval = DefaultProbeInterval
	}
	if r.cfg.ProbeTimeout <= 0 {
		r.cfg.ProbeTimeout = DefaultProbeTimeout
	}
	r.probes = newProber()
	rctx, stop := context.WithCancel(context.Background())
	r.ctx, r.stop = rctx, stop
	if r.cluster != nil {
		close(r.done) // the links have their own goroutines
	} else {
		if cfg.Sharded {
			r.ps = r.client.SSubscribe(context.Background())
		} else {
			r.ps = r.client.Subscribe(context.Background())
		}
		go r.receiveLoop(rctx)
	}
	if r.cfg.ProbeInterval > 0 {
		r.probeW.Add(1)
		go func() {
			defer r.probeW.Done()
			r.probeLoop(rctx)
		}()
	}
	return r, nil
}

func redactURL(raw string) string { return redisurl.Redact(raw) }

func (r *Redis) historyKey(channel string) string { return historyKey(r.cfg.Prefix, channel) }

func historyKey(prefix, channel string) string { return prefix + "{" + channel + "}:h" }

// ChannelSlot is the Redis Cluster hash slot that holds channel's events
// under prefix ("" for DefaultPrefix): its history and its pub/sub
// channel both hash on {channel}, so the one shard serving that slot
// carries the channel (what the runner's kill_redis_master aims at).
func ChannelSlot(prefix, channel string) int {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return hashslot.Of(historyKey(prefix, channel))
}

func (r *Redis) pubsubChannel(channel string) string {
	return r.cfg.Prefix + "{" + channel + "}:p"
}

// channelOf recovers the channel name from a pub/sub channel name.
func (r *Redis) channelOf(pubsub string) (string, bool) {
	rest, ok := strings.CutPrefix(pubsub, r.cfg.Prefix+"{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "}:p")
}

// Publish implements Broker. A batch goes to Redis in one pipeline.
func (r *Redis) Publish(ctx context.Context, msgs []Message) ([]eventid.ID, error) {
	ids, err := r.publish(ctx, msgs)
	r.reloadOn(err)
	return ids, err
}

// reloadOn has a cluster client learn the topology again after a failed
// command: go-redis does on MOVED, not when a master stops answering (its
// replica may have taken over).
func (r *Redis) reloadOn(err error) {
	if err != nil && r.cluster != nil {
		r.cluster.cc.ReloadState(context.Background())
	}
}

func (r *Redis) publish(ctx context.Context, msgs []Message) ([]eventid.ID, error) {
	if r.isClosed() {
		return nil, ErrClosed
	}
	maxLen := strconv.Itoa(r.cfg.MaxLen)
	maxAge := strconv.FormatInt(r.cfg.MaxAge.Milliseconds(), 10)
	keysOf := func(m Message) []string {
		k2 := r.cfg.Prefix + "{" + m.Channel + "}:k:" + m.Key
		return []string{r.historyKey(m.Channel), k2}
	}
	argsOf := func(m Message) []any {
		ttl := "0"
		if m.Key != "" {
			ttl = strconv.FormatInt(r.cfg.DedupeWindow.Milliseconds(), 10)
		}
		return []any{m.Body, maxLen, maxAge, r.pubsubChannel(m.Channel), ttl, r.pubCmd}
	}
	ids := make([]eventid.ID, len(msgs))
	if len(msgs) == 1 {
		res, err := publishScript.Run(ctx, r.client, keysOf(msgs[0]), argsOf(msgs[0])...).Text()
		if err != nil {
			return nil, publishErr("publish to redis", err)
		}
		id, err := eventid.Parse(res)
		if err != nil {
			return nil, fmt.Errorf("redis broker: publish script returned %q: %w", res, err)
		}
		ids[0] = id
		return ids, nil
	}
	if r.cluster != nil {
		return r.publishPerSlot(ctx, msgs, keysOf, maxLen, maxAge)
	}
	if !r.cfg.Sharded {
		return r.publishBatch(ctx, msgs, keysOf, maxLen, maxAge)
	}
	cmds := make([]*redis.Cmd, len(msgs))
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msgs {
			cmds[i] = publishScript.EvalSha(ctx, p, keysOf(m), argsOf(m)...)
		}
		return nil
	})
	if err != nil && !redis.HasErrorPrefix(err, "NOSCRIPT") {
		return nil, publishErr("publish batch to redis", err)
	}
	for i, c := range cmds {
		res, err := c.Text()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// Redis restarted and lost its script cache; nothing of this
			// command ran, so running it again publishes it once.
			res, err = publishScript.Run(ctx, r.client, keysOf(msgs[i]), argsOf(msgs[i])...).Text()
		}
		if err != nil {
			return nil, publishErr("publish to redis", err)
		}
		if ids[i], err = eventid.Parse(res); err != nil {
			return nil, fmt.Errorf("redis broker: publish script returned %q: %w", res, err)
		}
	}
	return ids, nil
}

// maxBatchScript bounds the events of one batch script call, so one call
// does not hold Redis for long.
const maxBatchScript = 256

// publishBatch publishes msgs with one script call per maxBatchScript
// events (single Redis only: the keys span slots).
func (r *Redis) publishBatch(ctx context.Context, msgs []Message, keysOf func(Message) []string, maxLen, maxAge string) ([]eventid.ID, error) {
	ids := make([]eventid.ID, 0, len(msgs))
	for start := 0; start < len(msgs); start += maxBatchScript {
		part := msgs[start:min(start+maxBatchScript, len(msgs))]
		keys := make([]string, 0, 2*len(part))
		args := make([]any, 0, 3+3*len(part))
		args = append(args, maxLen, maxAge, r.pubCmd)
		for _, m := range part {
			keys = append(keys, keysOf(m)...)
			ttl := "0"
			if m.Key != "" {
				ttl = strconv.FormatInt(r.cfg.DedupeWindow.Milliseconds(), 10)
			}
			args = append(args, m.Body, r.pubsubChannel(m.Channel), ttl)
		}
		res, err := publishBatchScript.Run(ctx, r.client, keys, args...).StringSlice()
		if err != nil {
			return nil, publishErr("publish batch to redis", err)
		}
		if len(res) != len(part) {
			return nil, fmt.Errorf("redis broker: batch script returned %d ids for %d events", len(res), len(part))
		}
		for _, text := range res {
			id, err := eventid.Parse(text)
			if err != nil {
				return nil, fmt.Errorf("redis broker: publish script returned %q: %w", text, err)
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// Subscribe implements Broker: it returns once Redis confirmed the
// subscription, so no event published afterwards is missed. It first reads
// the channel's newest id: should the pub/sub connection be lost before
// the channel's first event arrives, the catch-up starts from there.
func (r *Redis) Subscribe(ctx context.Context, channel string) error {
	name := r.pubsubChannel(channel)
	if r.isClosed() {
		return ErrClosed
	}
	r.subsMu.Lock()
	known := r.subs[name] != nil
	r.subsMu.Unlock()
	if !known {
		last, err := r.Last(ctx, channel)
		if err != nil {
			return fmt.Errorf("subscribe to %q: %w", channel, err)
		}
		r.subsMu.Lock()
		if r.subs[name] == nil {
			r.subs[name] = &redisSub{channel: channel, last: last}
		}
		r.subsMu.Unlock()
	}
	if r.cluster != nil {
		if err := r.subscribeOn(ctx, name); err != nil {
			if errors.Is(err, ErrClosed) {
				return err
			}
			return fmt.Errorf("%w: subscribe to %q: %w", ErrUnavailable, channel, err)
		}
		return nil
	}
	confirmed := make(chan struct{})
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	r.waiters[name] = append(r.waiters[name], confirmed)
	r.mu.Unlock()
	var err error
	if r.cfg.Sharded {
		err = r.ps.SSubscribe(ctx, name)
	} else {
		err = r.ps.Subscribe(ctx, name)
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		select {
		case <-confirmed:
			return nil
		case <-ctx.Done():
			err = fmt.Errorf("no confirmation from redis: %w", ctx.Err())
		}
	}
	r.dropWaiter(name, confirmed)
	return fmt.Errorf("%w: subscribe to %q: %w", ErrUnavailable, channel, err)
}

// Unsubscribe implements Broker.
func (r *Redis) Unsubscribe(ctx context.Context, channel string) error {
	if r.isClosed() {
		return nil
	}
	r.subsMu.Lock()
	delete(r.subs, r.pubsubChannel(channel))
	r.subsMu.Unlock()
	var err error
	switch {
	case r.cluster != nil:
		err = r.unsubscribeCluster(ctx, r.pubsubChannel(channel))
	case r.cfg.Sharded:
		err = r.ps.SUnsubscribe(ctx, r.pubsubChannel(channel))
	default:
		err = r.ps.Unsubscribe(ctx, r.pubsubChannel(channel))
	}
	if err != nil {
		return fmt.Errorf("%w: unsubscribe from %q: %w", ErrUnavailable, channel, err)
	}
	return nil
}

// History implements Broker.
func (r *Redis) History(ctx context.Context, channel string, after eventid.ID) (History, error) {
	res, err := historyScript.Run(ctx, r.client, []string{r.historyKey(channel)},
		after.String(), r.cfg.MaxAge.Milliseconds(), r.cfg.MaxLen).Slice()
	if err != nil {
		r.reloadOn(err)
		return History{}, fmt.Errorf("%w: read history of %q: %w", ErrUnavailable, channel, err)
	}
	if len(res) != 4 {
		return History{}, fmt.Errorf("redis broker: history script returned %d values", len(res))
	}
	var h History
	nowMs, _ := res[2].(int64)
	exists, _ := res[0].(int64)
	if exists == 1 {
		maxDel, err := eventid.Parse(fmt.Sprint(res[1]))
		if err == nil && after.Less(maxDel) {
			h.Missed, h.Reason = true, MissTrimmed
		}
		entries, _ := res[3].([]any)
		for _, e := range entries {
			d, err := r.parseEntry(channel, e)
			if err != nil {
				return History{}, err
			}
			h.Events = append(h.Events, d)
		}
	}
	if !h.Missed && tooOld(after, time.UnixMilli(nowMs), r.cfg.MaxAge) {
		h.Missed, h.Reason = true, MissTooOld
	}
	return h, nil
}

func (r *Redis) parseEntry(channel string, e any) (Delivery, error) {
	pair, ok := e.([]any)
	if !ok || len(pair) != 2 {
		return Delivery{}, fmt.Errorf("redis broker: malformed history entry %v", e)
	}
	id, err := eventid.Parse(fmt.Sprint(pair[0]))
	if err != nil {
		return Delivery{}, fmt.Errorf("redis broker: history entry id: %w", err)
	}
	fields, _ := pair[1].([]any)
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == "b" {
			body, _ := fields[i+1].(string)
			return Delivery{Channel: channel, ID: id, Body: []byte(body)}, nil
		}
	}
	return Delivery{}, fmt.Errorf("redis broker: history entry %s has no body", id)
}

// Last implements Broker.
func (r *Redis) Last(ctx context.Context, channel string) (eventid.ID, error) {
	info, err := r.client.XInfoStream(ctx, r.historyKey(channel)).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return eventid.ID{}, nil
		}
		r.reloadOn(err)
		return eventid.ID{}, fmt.Errorf("%w: last id of %q: %w", ErrUnavailable, channel, err)
	}
	return eventid.Parse(info.LastGeneratedID)
}

// receiveLoop reads pub/sub messages and hands them to the Handler. go-redis
// reconnects and resubscribes by itself; the loop backs off while Redis is
// unreachable, and once the subscriptions are back it catches up what was
// published meanwhile.
func (r *Redis) receiveLoop(ctx context.Context) {
	defer close(r.done)
	backoff := 50 * time.Millisecond
	var lostAt time.Time // when the link was first seen lost since the last catch-up
	for {
		msg, err := r.receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Silent past every probe's time (centrifugo #1189): the
				// read's deadline made go-redis drop the connection; the
				// next Receive dials again and resubscribes.
				err = fmt.Errorf("pub/sub link silent for %v, probes included: made again: %w", r.silentAfter(), err)
			}
			if lostAt.IsZero() {
				lostAt = time.Now()
			}
			r.linkUp.Store(false)
			if r.cfg.OnError != nil {
				r.cfg.OnError(err)
			}
			r.log.Warn("redis pub/sub receive failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
				r.probeResubscribed(m.Channel)
				stale := r.confirmed(m)
				r.linkUp.Store(true)
				r.confirm(m.Channel)
				if stale != nil {
					r.catchUp(ctx, stale, lostAt)
					lostAt = time.Time{}
				}
			}
		case *redis.Message:
			if r.isProbe(m) {
				continue
			}
			d, ok := r.decode(m)
			if !ok || !r.admit(m.Channel, d.ID) {
				continue
			}
			r.cfg.Handler(d)
		}
	}
}

// receive is the next pub/sub message. With probes, the link hears one
// every ProbeInterval, so a read silent for longer than silentAfter is a
// dead link that still looks open: the read's deadline ends it, and
// go-redis counts the connection bad and makes it again.
func (r *Redis) receive(ctx context.Context) (any, error) {
	if r.cfg.ProbeInterval <= 0 {
		return r.ps.Receive(ctx)
	}
	rctx, cancel := context.WithTimeout(ctx, r.silentAfter())
	defer cancel()
	return r.ps.Receive(rctx)
}

// silentAfter is the longest a live link with probes stays silent: a
// probe's time plus two intervals (the first probe is sent one interval
// after the start).
func (r *Redis) silentAfter() time.Duration {
	return r.cfg.ProbeTimeout + 2*r.cfg.ProbeInterval
}

func (r *Redis) confirm(name string) {
	r.mu.Lock()
	ws := r.waiters[name]
	delete(r.waiters, name)
	r.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

func (r *Redis) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// Close implements Broker.
func (r *Redis) Close() error {
	r.closeO.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.stop()
		r.probeW.Wait()
		if r.cluster != nil {
			r.closeCluster()
		} else {
			_ = r.ps.Close()
		}
		<-r.done
		if r.ownsCli {
			_ = r.client.Close()
		}
	})
	return nil
}

// publishErr classifies a failed publish command: refused or never sent
// (ErrUnavailable: nothing was published) against sent and not answered
// (ErrOutcomeUnknown: the script may have run, and its event be
// delivered). When in doubt it says unknown: a 503 is a promise that
// nothing was delivered.
func publishErr(what string, err error) error {
	var opErr *net.OpError
	var redisErr redis.Error
	switch {
	case errors.As(err, &redisErr):
		// Redis answered with an error (LOADING, READONLY, OOM, NOSCRIPT
		// …): the script did not run.
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	case errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed),
		errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrOutcomeUnknown, what, err)
}

// decode is a pub/sub message as a Delivery: "ID\nBODY" on a channel of
// this broker's prefix; false for anything else (ignored).
func (r *Redis) decode(m *redis.Message) (Delivery, bool) {
	channel, ok := r.channelOf(m.Channel)
	if !ok {
		return Delivery{}, false
	}
	idText, body, ok := strings.Cut(m.Payload, "\n")
	if !ok {
		return Delivery{}, false
	}
	id, err := eventid.Parse(idText)
	if err != nil {
		return Delivery{}, false
	}
	return Delivery{Channel: channel, ID: id, Body: []byte(body)}, true
}
