package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/darktime/darktime/server/pipeline"
	"github.com/darktime/darktime/server/queue"
	"github.com/darktime/darktime/server/worker"
)

// hookStats count the web tier's side of the hook ledger:
// accepted = jobs enqueued by this node.
type hookStats struct {
	accepted    atomic.Uint64 // hooks answered 202 (durably enqueued)
	rejected    atomic.Uint64 // hooks answered 4xx
	unavailable atomic.Uint64 // hooks answered 503 or 504 (queue full, unreachable, no answer)
	unknown     atomic.Uint64 // of those, answered 504: they may have been enqueued
}

// hookItemError is one bad hook of a batch.
type hookItemError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// handleHooks serves POST /hooks: one hook object, or a batch
// ({"hooks":[...]} or a JSON array). A hook is answered 202 only once it
// is durably in the queue. A batch whose hooks fall in one partition of
// the queue is enqueued whole or not at all; one over several partitions
// (of a queue on a Redis Cluster) is enqueued partition by partition, and
// when some fail the answer is 207 with a status per hook.
func (s *Server) handleHooks(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	if !s.authorizePublish(w, r) {
		return
	}
	if s.queue == nil {
		s.failHook(w, http.StatusServiceUnavailable, "hooks need the Redis job queue: start the server with --redis URL", 0)
		return
	}
	key, err := requestKey(r)
	if err != nil {
		s.failHook(w, http.StatusBadRequest, err.Error(), 1)
		return
	}
	w.Header().Set(IdempotencyHeader, key)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxHookBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.failHook(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes (--max-hook-body)", s.cfg.MaxHookBytes), 1)
			return
		}
		s.failHook(w, http.StatusBadRequest, "read body: "+err.Error(), 1)
		return
	}
	batch := isHookBatch(body)
	var payloads [][]byte
	var routes []string // each hook's object, so its jobs keep to one partition
	if batch {
		items, err := pipeline.ParseHookBatch(body)
		if err != nil {
			s.failHook(w, http.StatusBadRequest, err.Error(), 1)
			return
		}
		var bad []hookItemError
		for _, it := range items {
			err := it.Err
			if err == nil {
				err = s.knownModel(it.Hook)
			}
			if err != nil {
				bad = append(bad, hookItemError{Index: it.Index, Error: err.Error()})
				continue
			}
			payloads = append(payloads, it.Raw)
			routes = append(routes, routeOf(it.Hook))
		}
		if len(bad) > 0 {
			s.hooks.rejected.Add(uint64(len(items)))
			writeJSON(w, http.StatusBadRequest, map[string]any{
				"error":  fmt.Sprintf("%d of %d hooks are invalid; nothing was enqueued", len(bad), len(items)),
				"status": http.StatusBadRequest,
				"errors": bad,
			})
			return
		}
	} else {
		hook, err := pipeline.ParseHook(body)
		if err == nil {
			err = s.knownModel(hook)
		}
		if err != nil {
			s.failHook(w, http.StatusBadRequest, err.Error(), 1)
			return
		}
		payloads = [][]byte{body}
		routes = []string{routeOf(hook)}
	}
	jobs := make([]queue.KeyedJob, len(payloads))
	for i, p := range payloads {
		jobs[i] = queue.KeyedJob{Payload: p, Key: key, Partition: routes[i]}
		if batch {
			jobs[i].Key = itemKey(key, i)
		}
	}
	ids, fresh, err := s.queue.EnqueueKeyed(r.Context(), jobs, 0)
	var partial *queue.PartialError
	if errors.As(err, &partial) {
		s.answerPartialHooks(w, key, partial, fresh)
		return
	}
	if err != nil {
		s.hooks.unavailable.Add(uint64(len(payloads)))
		s.log.Warn("enqueue hooks", "err", err, "hooks", len(payloads))
		switch {
		case errors.Is(err, queue.ErrFull):
			writeUncertain(w, http.StatusServiceUnavailable, key, "the job queue is full; nothing was enqueued, retry later")
		case errors.Is(err, queue.ErrOutcomeUnknown) || !errors.Is(err, queue.ErrUnavailable) && !errors.Is(err, queue.ErrClosed):
			s.hooks.unknown.Add(uint64(len(payloads)))
			writeUncertain(w, http.StatusGatewayTimeout, key, "enqueue outcome unknown: Redis took the command and did not answer, so the hooks may be enqueued and published; a retry with the same Idempotency-Key enqueues them once: "+err.Error())
		default:
			writeUncertain(w, http.StatusServiceUnavailable, key, "the job queue is unavailable; nothing was enqueued, retry (with the same Idempotency-Key, to be safe): "+err.Error())
		}
		return
	}
	s.hooks.accepted.Add(uint64(fresh))
	if batch {
		writeJSON(w, http.StatusAccepted, map[string]any{"job_ids": ids, "idempotency_key": key})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"job_id": ids[0], "idempotency_key": key})
}

// routeOf is a hook's routing key in the queue: its object.
func routeOf(h pipeline.Hook) string { return h.Model + ":" + h.ID }

// HookResult is one hook of a 207 answer to a batch that the queue took in
// part (a batch over several partitions of a queue on a Redis Cluster, some
// of whose shards failed).
type HookResult struct {
	Index int    `json:"index"`
	JobID string `json:"job_id,omitempty"`
	// Status is 202 for an enqueued hook (now or by an earlier try with the
	// same key), 503 for one not enqueued (retry it), 504 for one whose
	// outcome is unknown (retry it with the same key: it is enqueued once).
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

// answerPartialHooks answers 207 with one HookResult per hook. Retrying
// the whole batch with the same Idempotency-Key enqueues only the hooks
// not answered 202.
func (s *Server) answerPartialHooks(w http.ResponseWriter, key string, partial *queue.PartialError, fresh int) {
	s.hooks.accepted.Add(uint64(fresh))
	results := make([]HookResult, len(partial.Errs))
	failed := 0
	for i, e := range partial.Errs {
		results[i] = HookResult{Index: i, Status: http.StatusAccepted, JobID: partial.IDs[i]}
		if e == nil {
			continue
		}
		failed++
		results[i].JobID = ""
		switch {
		case errors.Is(e, queue.ErrFull):
			results[i].Status, results[i].Error = http.StatusServiceUnavailable, "not enqueued, the job queue's partition is full; retry later: "+e.Error()
		case errors.Is(e, queue.ErrOutcomeUnknown) || !errors.Is(e, queue.ErrUnavailable):
			s.hooks.unknown.Add(1)
			results[i].Status, results[i].Error = http.StatusGatewayTimeout, "outcome unknown, it may be enqueued; retry with the same Idempotency-Key: "+e.Error()
		default:
			results[i].Status, results[i].Error = http.StatusServiceUnavailable, "not enqueued; retry (with the same Idempotency-Key, to be safe): "+e.Error()
		}
	}
	s.hooks.unavailable.Add(uint64(failed))
	s.log.Warn("hooks enqueued in part", "err", partial, "hooks", len(partial.Errs), "failed", failed)
	writeJSON(w, http.StatusMultiStatus, map[string]any{"hooks": results, "idempotency_key": key})
}

// isHookBatch tells a batch ({"hooks":[...]} or a JSON array) from one
// hook by the first token and the object's first key, whatever the
// whitespace (a pretty-printed batch is a batch).
func isHookBatch(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	switch tok {
	case json.Delim('['):
		return true
	case json.Delim('{'):
		key, err := dec.Token()
		return err == nil && key == "hooks"
	}
	return false
}

func (s *Server) failHook(w http.ResponseWriter, status int, msg string, hooks uint64) {
	if status < 500 {
		s.hooks.rejected.Add(hooks)
	} else {
		s.hooks.unavailable.Add(hooks)
	}
	s.fail(w, status, msg)
}

// knownModel rejects hooks for models without a pipeline at the door,
// rather than dead-lettering them later.
func (s *Server) knownModel(h pipeline.Hook) error {
	if _, ok := s.pipelines.Pipeline(h.Model); !ok {
		return fmt.Errorf("%w: unknown model %q (configured: %s)", pipeline.ErrUnknownModel, h.Model, strings.Join(s.pipelines.ModelNames(), ", "))
	}
	return nil
}

// QueueStats is GET /queue/stats.
type QueueStats struct {
	queue.Stats
	// Imbalance is enqueued + replayed - acked - dead_lettered - depth -
	// in_flight: 0 when every job is accounted for.
	Imbalance int64         `json:"imbalance"`
	Workers   *worker.Stats `json:"workers,omitempty"`
	// Partitions has each partition's stats, by index, when the queue has
	// more than one (their sum is the top level).
	Partitions []queue.Stats `json:"partitions,omitempty"`
}

func (s *Server) handleQueueStats(w http.ResponseWriter, r *http.Request) {
	if s.queue == nil {
		s.fail(w, http.StatusServiceUnavailable, "no job queue: start the server with --redis URL")
		return
	}
	parts, err := s.queue.PartitionStats(r.Context())
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, "queue stats: "+err.Error())
		return
	}
	var st queue.Stats
	for _, p := range parts {
		st = st.Add(p)
	}
	out := QueueStats{Stats: st, Imbalance: st.Imbalance()}
	if len(parts) > 1 {
		out.Partitions = parts
	}
	if s.workers != nil {
		ws := s.workers.Stats()
		out.Workers = &ws
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeAdmin(w, r) {
		return
	}
	if s.queue == nil {
		s.fail(w, http.StatusServiceUnavailable, "no job queue: start the server with --redis URL")
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			s.fail(w, http.StatusBadRequest, "limit must be a number from 1 to 10000")
			return
		}
		limit = n
	}
	dead, err := s.queue.Dead(r.Context(), limit)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, "dead letters: "+err.Error())
		return
	}
	type deadJSON struct {
		ID         string          `json:"id"`
		OriginalID string          `json:"original_id"`
		Attempts   int             `json:"attempts"`
		Error      string          `json:"error"`
		Payload    json.RawMessage `json:"payload"`
		DiedAt     string          `json:"died_at"`
	}
	out := make([]deadJSON, 0, len(dead))
	for _, d := range dead {
		payload := json.RawMessage(d.Payload)
		if !json.Valid(payload) {
			payload, _ = json.Marshal(string(d.Payload))
		}
		out = append(out, deadJSON{ID: d.ID, OriginalID: d.OriginalID, Attempts: d.Attempts, Error: d.Error, Payload: payload, DiedAt: d.DiedAt.UTC().Format("2006-01-02T15:04:05.000Z")})
	}
	writeJSON(w, http.StatusOK, map[string]any{"dead": out})
}

// handleReplay serves POST /queue/dead/replay with {"ids":[...]} or no
// body (replay every dead letter).
func (s *Server) handleReplay(w http.ResponseWriter, r *http.Request) {
	if !s.authorizeAdmin(w, r) {
		return
	}
	if s.queue == nil {
		s.fail(w, http.StatusServiceUnavailable, "no job queue: start the server with --redis URL")
		return
	}
	var req struct {
		IDs []string `json:"ids"`
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.fail(w, http.StatusBadRequest, `bad JSON: want {"ids":["<dead letter id>",...]} or no body for all: `+err.Error())
			return
		}
	}
	for _, id := range req.IDs {
		if err := s.queue.CheckID(id); err != nil {
			s.fail(w, http.StatusBadRequest, fmt.Sprintf("dead letter id %q is not one of this queue's (<ms>-<seq>, or <partition>/<ms>-<seq> with several partitions, as GET /queue/dead lists them): %v", truncate(id), err))
			return
		}
	}
	n, err := s.queue.ReplayDead(r.Context(), req.IDs...)
	if err != nil {
		if errors.Is(err, queue.ErrOutcomeUnknown) {
			// Replaying by id again is safe: an id replayed already is no
			// longer a dead letter and is skipped.
			s.fail(w, http.StatusGatewayTimeout, fmt.Sprintf("replay outcome unknown after %d replayed: Redis took the command and did not answer; replaying the same ids again is safe: %v", n, err))
			return
		}
		s.fail(w, http.StatusServiceUnavailable, fmt.Sprintf("replay failed after %d replayed; retry: %v", n, err))
		return
	}
	if len(req.IDs) > 0 && n == 0 {
		s.fail(w, http.StatusNotFound, fmt.Sprintf("none of the %d ids is a dead letter (GET /queue/dead lists them; replayed already?)", len(req.IDs)))
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"replayed": n, "not_found": len(req.IDs) - min(n, len(req.IDs))})
}
