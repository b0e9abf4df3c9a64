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
	unavailable atomic.Uint64 // hooks answered 503 (queue full or unreachable)
}

// HookStats is the "hooks" section of /stats.
type HookStats struct {
	Accepted    uint64        `json:"accepted"`
	Rejected    uint64        `json:"rejected"`
	Unavailable uint64        `json:"unavailable"`
	Workers     *worker.Stats `json:"workers,omitempty"`
}

// hookItemError is one bad hook of a batch.
type hookItemError struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

// handleHooks serves POST /hooks: one hook object, or a batch
// ({"hooks":[...]} or a JSON array). A hook is answered 202 only once it
// is durably in the queue; a batch is enqueued whole or not at all.
func (s *Server) handleHooks(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	if !s.authorizePublish(w, r) {
		return
	}
	if s.queue == nil {
		s.failHook(w, http.StatusServiceUnavailable, "hooks need the Redis job queue: start the server with --redis URL", 0)
		return
	}
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
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	batch := len(trimmed) > 0 && (trimmed[0] == '[' || bytes.HasPrefix(trimmed, []byte(`{"hooks"`)))
	var payloads [][]byte
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
	}
	ids, err := s.queue.EnqueueBatch(r.Context(), payloads)
	if err != nil {
		s.hooks.unavailable.Add(uint64(len(payloads)))
		msg := "the job queue is unavailable; nothing was enqueued, retry: " + err.Error()
		if errors.Is(err, queue.ErrFull) {
			msg = "the job queue is full; nothing was enqueued, retry later"
		}
		s.log.Warn("enqueue hooks", "err", err, "hooks", len(payloads))
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msg, Status: http.StatusServiceUnavailable})
		return
	}
	s.hooks.accepted.Add(uint64(len(ids)))
	if batch {
		writeJSON(w, http.StatusAccepted, map[string]any{"job_ids": ids})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"job_id": ids[0]})
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
}

func (s *Server) handleQueueStats(w http.ResponseWriter, r *http.Request) {
	if s.queue == nil {
		s.fail(w, http.StatusServiceUnavailable, "no job queue: start the server with --redis URL")
		return
	}
	st, err := s.queue.Stats(r.Context())
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, "queue stats: "+err.Error())
		return
	}
	out := QueueStats{Stats: st, Imbalance: st.Imbalance()}
	if s.workers != nil {
		ws := s.workers.Stats()
		out.Workers = &ws
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeadLetters(w http.ResponseWriter, r *http.Request) {
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
	if !s.authorizePublish(w, r) {
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
	n, err := s.queue.ReplayDead(r.Context(), req.IDs...)
	if err != nil {
		s.fail(w, http.StatusServiceUnavailable, "replay: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"replayed": n})
}
