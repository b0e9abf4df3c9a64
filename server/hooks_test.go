package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/pipeline"
	"github.com/darktime/darktime/server/queue"
	"github.com/darktime/darktime/server/worker"
)

func postHook(id, thread int, msg string) string {
	return fmt.Sprintf(`{"model":"post","action":"post_save","id":%d,"thread":%d,"forum":"news","author":"alice","message":%q}`, id, thread, msg)
}

func queueStats(t *testing.T, base string) QueueStats {
	t.Helper()
	resp, err := http.Get(base + "/queue/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st QueueStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestHookToBrowser: a post_save hook goes through the queue, a worker and
// the default pipeline, and reaches subscribers of its thread, forum and
// author channels in the browser format.
func TestHookToBrowser(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	srv, base := startServer(t, Config{RedisURL: rds.URL, Workers: 2})
	thread := subscribe(t, base+"/sub/thread:7", nil)
	user := subscribe(t, base+"/sub/user:alice", nil)
	code, body := do(t, "POST", base+"/hooks", nil, postHook(1, 7, "hello <world>"))
	if code != http.StatusAccepted || body["job_id"] == nil {
		t.Fatalf("POST /hooks: %d %v", code, body)
	}
	for _, s := range []*stream{thread, user} {
		ev := s.next(5 * time.Second)
		var got struct {
			Type, Action string
			Data         map[string]any
		}
		if err := json.Unmarshal(ev.Data, &got); err != nil {
			t.Fatalf("event data %q: %v", ev.Data, err)
		}
		if ev.Event != "post.saved" || got.Type != "post" || got.Action != "saved" || got.Data["message"] != "hello <world>" || got.Data["thread"] != float64(7) || got.Data["received_at"] == nil {
			t.Fatalf("event %s %s", ev.Event, ev.Data)
		}
	}
	// post_delete publishes a removal notice.
	do(t, "POST", base+"/hooks", nil, `{"model":"post","action":"post_delete","id":1,"thread":7}`)
	if ev := thread.next(5 * time.Second); ev.Event != "post.deleted" || !strings.Contains(string(ev.Data), `"id":"1"`) && !strings.Contains(string(ev.Data), `"id":1`) {
		t.Fatalf("delete event %s %s", ev.Event, ev.Data)
	}
	// The ledger: accepted = enqueued = acked; acked jobs = events per route.
	tstest.WaitFor(t, 5*time.Second, "jobs acked", func() bool { return queueStats(t, base).Acked == 2 })
	qs := queueStats(t, base)
	st := srv.Stats()
	if st.Hooks.Accepted != 2 || qs.Enqueued != 2 || qs.Imbalance != 0 || qs.Workers.Acked != 2 ||
		qs.Workers.EventsByRoute["thread"] != 2 || qs.Workers.EventsByRoute["forum"] != 1 || qs.Workers.EventsByRoute["user"] != 1 {
		t.Fatalf("hooks %+v queue %+v workers %+v", st.Hooks, qs.Stats, qs.Workers)
	}
}

func TestHookBadInput(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	srv, base := startServer(t, Config{RedisURL: rds.URL, MaxHookBytes: 2000})
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"bad json", `{"model":`, 400},
		{"not an object", `"post"`, 400},
		{"unknown model", `{"model":"comment","action":"post_save","id":1}`, 400},
		{"unknown action", `{"model":"post","action":"pre_save","id":1}`, 400},
		{"missing id", `{"model":"post","action":"post_save"}`, 400},
		{"too big", `{"model":"post","action":"post_save","id":1,"message":"` + strings.Repeat("x", 2000) + `"}`, 413},
		{"batch with one bad hook", `{"hooks":[` + postHook(1, 1, "ok") + `,{"model":"post"}]}`, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, "POST", base+"/hooks", nil, tc.body)
			if code != tc.want || body["error"] == nil {
				t.Fatalf("%d %v, want %d with a JSON error", code, body, tc.want)
			}
		})
	}
	if qs := queueStats(t, base); qs.Enqueued != 0 || srv.Stats().Hooks.Rejected != 8 {
		t.Fatalf("bad hooks enqueued something: %+v, hooks %+v", qs.Stats, srv.Stats().Hooks)
	}
	t.Run("no queue without redis", func(t *testing.T) {
		_, base := startServer(t, Config{})
		code, body := do(t, "POST", base+"/hooks", nil, postHook(1, 1, "x"))
		if code != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body["error"]), "--redis") {
			t.Fatalf("hooks without Redis: %d %v", code, body)
		}
	})
}

// TestHookOrderingPerObject: many hooks for one object, processed by four
// lanes, arrive in order.
func TestHookOrderingPerObject(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	_, base := startServer(t, Config{RedisURL: rds.URL, Workers: 4})
	s := subscribe(t, base+"/sub/thread:9", nil)
	var batch []string
	for i := 0; i < 200; i++ {
		batch = append(batch, postHook(42, 9, fmt.Sprint(i)))
		// Noise on other objects spreads jobs over the lanes.
		batch = append(batch, postHook(1000+i, 10, "noise"))
	}
	code, body := do(t, "POST", base+"/hooks", nil, "["+strings.Join(batch, ",")+"]")
	if code != http.StatusAccepted {
		t.Fatalf("batch: %d %v", code, body)
	}
	for i := 0; i < 200; i++ {
		ev := s.next(10 * time.Second)
		if !strings.Contains(string(ev.Data), fmt.Sprintf(`"message":"%d"`, i)) {
			t.Fatalf("event %d out of order: %s", i, ev.Data)
		}
	}
}

// failStage fails transiently until the hook's attempt reaches "ok_at",
// and rejects hooks with "poison".
var failStage = pipeline.StageFunc(func(_ context.Context, it *pipeline.Item) error {
	if it.Doc["poison"] != nil {
		return pipeline.Rejectf("poison pill")
	}
	if okAt, ok := it.Doc["ok_at"].(json.Number); ok {
		n, _ := okAt.Int64()
		if int64(it.Hook.Attempt) < n {
			return fmt.Errorf("transient failure on attempt %d", it.Hook.Attempt)
		}
	}
	return nil
})

func TestHookRetriesAndDeadLetters(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	cfg := pipeline.DefaultConfig()
	p, _ := cfg.Pipeline("post")
	cfg.Models["post"] = append(pipeline.Pipeline{failStage}, p...)
	_, base := startServer(t, Config{RedisURL: rds.URL, Workers: 1, Pipelines: cfg, QueueMaxAttempts: 3})
	s := subscribe(t, base+"/sub/thread:5", nil)

	// Succeeds on the third delivery.
	do(t, "POST", base+"/hooks", nil, `{"model":"post","action":"post_save","id":1,"thread":5,"forum":"f","author":"a","ok_at":3}`)
	if ev := s.next(10 * time.Second); !strings.Contains(string(ev.Data), `"id":1`) && !strings.Contains(string(ev.Data), `"id":"1"`) {
		t.Fatalf("retried hook: %s", ev.Data)
	}
	// Never succeeds: dead after 3 deliveries, with the last error kept.
	do(t, "POST", base+"/hooks", nil, `{"model":"post","action":"post_save","id":2,"thread":5,"forum":"f","author":"a","ok_at":99}`)
	// Rejected at once.
	do(t, "POST", base+"/hooks", nil, `{"model":"post","action":"post_save","id":3,"thread":5,"forum":"f","author":"a","poison":true}`)
	tstest.WaitFor(t, 10*time.Second, "two dead letters", func() bool { return queueStats(t, base).Dead == 2 })
	code, body := do(t, "GET", base+"/queue/dead", nil, "")
	dead, _ := body["dead"].([]any)
	if code != 200 || len(dead) != 2 {
		t.Fatalf("/queue/dead: %d %v", code, body)
	}
	errs := fmt.Sprint(dead)
	if !strings.Contains(errs, "transient failure on attempt 3") || !strings.Contains(errs, "poison pill") {
		t.Fatalf("dead letters lack their last errors: %v", dead)
	}
	qs := queueStats(t, base)
	if qs.Enqueued != 3 || qs.Acked != 1 || qs.DeadLettered != 2 || qs.Retried < 4 || qs.Imbalance != 0 {
		t.Fatalf("queue %+v", qs.Stats)
	}
	// Replaying the poison pill dead-letters it again; the ledger holds.
	code, body = do(t, "POST", base+"/queue/dead/replay", nil, "")
	if code != 200 || body["replayed"] != float64(2) {
		t.Fatalf("replay: %d %v", code, body)
	}
	tstest.WaitFor(t, 10*time.Second, "replayed jobs to die again", func() bool { return queueStats(t, base).DeadLettered == 4 })
	if qs := queueStats(t, base); qs.Replayed != 2 || qs.Imbalance != 0 {
		t.Fatalf("after replay %+v", qs.Stats)
	}
}

// workerProcessEnv makes the test binary a worker process (see TestMain):
// it claims jobs, publishes, and then hangs before acking, so the test can
// SIGKILL it at the worst moment.
const workerProcessEnv = "DARKTIME_TEST_WORKER_PROCESS"

func runWorkerProcess() {
	url := os.Getenv(workerProcessEnv)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	b, err := broker.NewRedis(broker.RedisConfig{Config: broker.Config{Handler: func(broker.Delivery) {}}, URL: url, Logger: log})
	if err != nil {
		log.Error("worker process", "err", err)
		os.Exit(1)
	}
	opt, _ := redis.ParseURL(url)
	q, err := queue.New(queue.Config{Client: redis.NewClient(opt), VisibilityTimeout: time.Second})
	if err != nil {
		log.Error("worker process", "err", err)
		os.Exit(1)
	}
	pool, _ := worker.New(worker.Config{Queue: q, Publisher: b, Consumer: "doomed", Lanes: 1,
		AfterPublish: func() {
			fmt.Println("published")
			select {} // never ack: the parent kills us here
		}})
	_ = pool.Run(context.Background())
}

// TestWorkerKilledMidJob: a worker process publishes a job's events and is
// SIGKILLed before acking; after the visibility timeout another worker
// gets the job, and subscribers still see each event once.
func TestWorkerKilledMidJob(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	// The web tier, no in-process workers yet.
	srv, base := startServer(t, Config{RedisURL: rds.URL, QueueVisibility: time.Second})
	s := subscribe(t, base+"/sub/thread:3", nil)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), workerProcessEnv+"="+rds.URL)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	do(t, "POST", base+"/hooks", nil, postHook(1, 3, "once"))
	first := s.next(10 * time.Second)
	buf := make([]byte, 16)
	if n, _ := out.Read(buf); !strings.HasPrefix(string(buf[:n]), "published") {
		t.Fatalf("worker process said %q", buf[:n])
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL between publish and ack
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if qs := queueStats(t, base); qs.InFlight != 1 || qs.Acked != 0 {
		t.Fatalf("after the kill: %+v", qs.Stats)
	}

	// A healthy worker takes over once the visibility timeout passes.
	opt, _ := redis.ParseURL(rds.URL)
	qc := redis.NewClient(opt)
	defer qc.Close()
	q, err := queue.New(queue.Config{Client: qc, VisibilityTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := worker.New(worker.Config{Queue: q, Publisher: srv.Broker(), Consumer: "healthy", Block: 100 * time.Millisecond, Logger: testLogger(t)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = pool.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tstest.WaitFor(t, 10*time.Second, "the redelivered job to be acked", func() bool { return queueStats(t, base).Acked == 1 })
	if st := pool.Stats(); st.Claimed != 1 || st.Events != 3 {
		t.Fatalf("healthy worker %+v", st)
	}
	// A marker instead of a pause: the job was published before it was
	// acked, and a channel's events arrive in order, so a second copy
	// would come before it.
	publish(t, base, "thread:3", "marker")
	if ev := s.next(5 * time.Second); string(ev.Data) != "marker" {
		t.Fatalf("the redelivered job showed twice: first %s, again %s", first.ID, ev.ID)
	}
	if qs := queueStats(t, base); qs.Retried != 1 || qs.Imbalance != 0 {
		t.Fatalf("queue %+v", qs.Stats)
	}
}

// TestHooksSurviveRedisRestart: hooks answered 202 are in Redis with AOF;
// Redis is killed and restarted; the web tier's subscribers reconnect and a
// worker that starts afterwards delivers every one of them.
func TestHooksSurviveRedisRestart(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t, redistest.Options{AppendOnly: true})
	web, base := startServer(t, Config{RedisURL: rds.URL, NodeID: "web"})
	s := subscribe(t, base+"/sub/thread:77", nil)
	var batch []string
	for i := 0; i < 20; i++ {
		batch = append(batch, postHook(i, 77, fmt.Sprint(i)))
	}
	if code, body := do(t, "POST", base+"/hooks", nil, "["+strings.Join(batch, ",")+"]"); code != http.StatusAccepted {
		t.Fatalf("hooks: %d %v", code, body)
	}
	rds.Restart() // SIGKILL, then start again on the same AOF
	tstest.WaitFor(t, 15*time.Second, "the queue to answer again", func() bool {
		resp, err := http.Get(base + "/queue/stats")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	// The web tier's pub/sub connection comes back by itself: probe until a
	// publish reaches the subscriber again, then start a worker node.
	tstest.WaitFor(t, 15*time.Second, "the web tier to resubscribe", func() bool {
		if code, _ := do(t, "POST", base+"/pub?id=thread:77", nil, "probe"); code != http.StatusCreated {
			return false
		}
		select {
		case ev := <-s.events:
			return string(ev.Data) == "probe"
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
	startServer(t, Config{RedisURL: rds.URL, NodeID: "worker", Workers: 1})
	got := map[string]bool{}
	for len(got) < 20 {
		if ev := s.next(15 * time.Second); string(ev.Data) != "probe" {
			got[string(ev.Data)] = true
		}
	}
	if web.Stats().Totals.BrokerErrors == 0 {
		t.Fatal("the outage was not counted")
	}
	tstest.WaitFor(t, 5*time.Second, "20 acked", func() bool { return queueStats(t, base).Acked == 20 })
	if qs := queueStats(t, base); qs.Enqueued != 20 || qs.Imbalance != 0 {
		t.Fatalf("queue after restart %+v", qs.Stats)
	}
}
