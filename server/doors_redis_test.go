package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/darktime/darktime/internal/redistest"
	"github.com/darktime/darktime/internal/tstest"
)

// doRaw sends a request and returns the status, the decoded JSON and the
// response headers.
func doRaw(t *testing.T, method, url string, hdr map[string]string, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

// TestUncertainRetriedOnce: with Redis paused, a publish, a batch publish
// and a hook that were sent and never answered answer 504 (outcome
// unknown, not 503 "not done") with an idempotency key; after Redis
// continues, the retry with that key is answered 2xx with the same ids,
// and subscribers get every event exactly once. A sentinel published
// after the retry proves the window has passed before the count is taken.
func TestUncertainRetriedOnce(t *testing.T) {
	tstest.Long(t, "waits out the publish timeout on a paused Redis, four times")
	t.Parallel()
	type request struct {
		path, ct, body string
	}
	for _, tc := range []struct {
		name     string
		channel  string
		first    request
		sentinel request
		ok       int
		matches  func(data string) bool // an event the first request made
		want     int                    // events it makes
	}{
		{
			name: "publish", channel: "paused-one",
			first:    request{"/pub?id=paused-one", "text/plain", "during"},
			sentinel: request{"/pub?id=paused-one", "text/plain", "sentinel"},
			ok:       http.StatusCreated, want: 1,
			matches: func(d string) bool { return d == "during" },
		},
		{
			name: "batch", channel: "paused-batch",
			first: request{"/pub", "application/json", `{"events":[
				{"channel":"paused-batch","data":"b1"},
				{"channel":"paused-batch","data":"b2"},
				{"channel":"paused-batch","data":"b3","key":"own-key"}]}`},
			sentinel: request{"/pub?id=paused-batch", "text/plain", "sentinel"},
			ok:       http.StatusCreated, want: 3,
			matches: func(d string) bool { return strings.HasPrefix(d, "b") },
		},
		{
			name: "hook", channel: "thread:77",
			first:    request{"/hooks", "application/json", postHook(1, 77, "during")},
			sentinel: request{"/hooks", "application/json", postHook(2, 77, "sentinel")},
			ok:       http.StatusAccepted, want: 1,
			matches: func(d string) bool { return strings.Contains(d, `"message":"during"`) },
		},
		{
			name: "hook batch", channel: "thread:78",
			first: request{"/hooks", "application/json", fmt.Sprintf("{\n  \"hooks\": [\n    %s,\n    %s\n  ]\n}",
				postHook(1, 78, "during-a"), postHook(2, 78, "during-b"))},
			sentinel: request{"/hooks", "application/json", postHook(3, 78, "sentinel")},
			ok:       http.StatusAccepted, want: 2,
			matches: func(d string) bool { return strings.Contains(d, `"message":"during-`) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rds := redistest.Start(t)
			srv, base := startServer(t, Config{RedisURL: rds.URL, Workers: 1, KeepAlive: 100 * time.Millisecond})
			sub := subscribe(t, base+"/sub/"+tc.channel, nil)
			send := func(r request, hdr map[string]string) (int, map[string]any, http.Header) {
				h := map[string]string{"Content-Type": r.ct}
				for k, v := range hdr {
					h[k] = v
				}
				return doRaw(t, "POST", base+r.path, h, r.body)
			}
			rds.Pause()
			code, body, hdr := send(tc.first, nil)
			key, _ := body["idempotency_key"].(string)
			if code != http.StatusGatewayTimeout || body["outcome"] != "unknown" || key == "" || hdr.Get(IdempotencyHeader) != key {
				t.Fatalf("with Redis paused: %d %v (header key %q), want 504 outcome unknown with the idempotency key", code, body, hdr.Get(IdempotencyHeader))
			}
			st := srv.Stats()
			if unknown := st.Totals.PublishUnknown + st.Hooks.Unknown; unknown != uint64(tc.want) {
				t.Fatalf("counted %d publishes or hooks of unknown outcome, want %d", unknown, tc.want)
			}
			rds.Resume()
			code, retried, _ := send(tc.first, map[string]string{IdempotencyHeader: key})
			if code != tc.ok {
				t.Fatalf("retry with key %s: %d %v, want %d", key, code, retried, tc.ok)
			}
			// The retry names what the first request did: the same ids
			// (a repeat of the same key publishes and enqueues nothing).
			code, again, _ := send(tc.first, map[string]string{IdempotencyHeader: key})
			if code != tc.ok || fmt.Sprint(again["id"], again["events"], again["job_id"], again["job_ids"]) != fmt.Sprint(retried["id"], retried["events"], retried["job_id"], retried["job_ids"]) {
				t.Fatalf("second retry %d %v, first retry %v: want the same ids", code, again, retried)
			}
			if code, body, _ := send(tc.sentinel, nil); code != tc.ok {
				t.Fatalf("sentinel: %d %v", code, body)
			}
			got := 0
			for {
				ev := sub.next(20 * time.Second)
				d := string(ev.Data)
				if strings.Contains(d, "sentinel") {
					break
				}
				if tc.matches(d) {
					got++
				}
			}
			if got != tc.want {
				t.Fatalf("the subscriber got %d events of the request answered 504 and retried twice, want %d (once each)", got, tc.want)
			}
		})
	}
}

// TestUnavailableCarriesKey: with Redis gone, a publish and a hook answer
// 503 (not done) and still name the idempotency key.
func TestUnavailableCarriesKey(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	_, base := startServer(t, Config{RedisURL: rds.URL})
	rds.Stop()
	for _, tc := range []struct{ path, body string }{
		{"/pub?id=gone", "x"},
		{"/hooks", postHook(1, 1, "x")},
	} {
		code, body, hdr := doRaw(t, "POST", base+tc.path, map[string]string{IdempotencyHeader: "client-key"}, tc.body)
		if code != http.StatusServiceUnavailable || body["outcome"] != "not_done" || body["idempotency_key"] != "client-key" || hdr.Get(IdempotencyHeader) != "client-key" {
			t.Errorf("POST %s with Redis stopped: %d %v, want 503 not_done with the client's key", tc.path, code, body)
		}
	}
}

// TestHookBatchPretty: a batch object is a batch whatever its whitespace.
func TestHookBatchPretty(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	_, base := startServer(t, Config{RedisURL: rds.URL})
	for _, body := range []string{
		fmt.Sprintf(`{"hooks":[%s]}`, postHook(1, 1, "compact")),
		fmt.Sprintf("{\n  \"hooks\": [\n    %s\n  ]\n}", postHook(2, 1, "pretty")),
		fmt.Sprintf("\t{ \"hooks\" : [%s]}", postHook(3, 1, "spaced")),
		fmt.Sprintf("[\n%s\n]", postHook(4, 1, "array")),
	} {
		code, resp, _ := doRaw(t, "POST", base+"/hooks", nil, body)
		if ids, _ := resp["job_ids"].([]any); code != http.StatusAccepted || len(ids) != 1 {
			t.Errorf("POST /hooks %q: %d %v, want 202 with one job id", body, code, resp)
		}
	}
}

// TestDeadLetterDoors: listing and replaying dead letters need the publish
// (or admin) token when one is set, and come from this host otherwise;
// an unknown id is 400 (not an id) or 404 (no such dead letter), not 503.
func TestDeadLetterDoors(t *testing.T) {
	t.Parallel()
	rds := redistest.Start(t)
	_, open := startServer(t, Config{RedisURL: rds.URL, RedisPrefix: "open:", QueueName: "open:jobs"})
	_, guarded := startServer(t, Config{RedisURL: rds.URL, PublishToken: "pub", AdminToken: "adm", QueueName: "guarded:jobs"})
	remote := map[string]string{"X-Forwarded-For": "192.0.2.1"}
	for _, tc := range []struct {
		name, base, method, path string
		hdr                      map[string]string
		body                     string
		want                     int
	}{
		{"list without a token, from here", open, "GET", "/queue/dead", nil, "", 200},
		{"list without a token, through a proxy for a remote client", open, "GET", "/queue/dead", remote, "", 403},
		{"replay through a proxy for a remote client", open, "POST", "/queue/dead/replay", remote, "", 403},
		{"list with a token set, no auth", guarded, "GET", "/queue/dead", nil, "", 401},
		{"list with a wrong token", guarded, "GET", "/queue/dead", map[string]string{"Authorization": "Bearer nope"}, "", 403},
		{"list with the publish token", guarded, "GET", "/queue/dead", map[string]string{"Authorization": "Bearer pub"}, "", 200},
		{"list with the admin token", guarded, "GET", "/queue/dead", map[string]string{"Authorization": "bearer adm"}, "", 200},
		{"replay with a token set, no auth", guarded, "POST", "/queue/dead/replay", nil, "", 401},
		{"replay with the admin token", guarded, "POST", "/queue/dead/replay", map[string]string{"Authorization": "Bearer adm"}, "", 200},
		{"the admin token does not publish", guarded, "POST", "/pub?id=x", map[string]string{"Authorization": "Bearer adm"}, "x", 403},
		{"replay an id that is not one", open, "POST", "/queue/dead/replay", nil, `{"ids":["nope"]}`, 400},
		{"replay an id that is not a dead letter", open, "POST", "/queue/dead/replay", nil, `{"ids":["1-0"]}`, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := doRaw(t, tc.method, tc.base+tc.path, tc.hdr, tc.body)
			if code != tc.want {
				t.Fatalf("%s %s: %d %v, want %d", tc.method, tc.path, code, body, tc.want)
			}
		})
	}
}
