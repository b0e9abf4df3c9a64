package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/darktime/darktime/server/broker"
)

// maxBatchEvents bounds the events of one JSON batch publish.
const maxBatchEvents = 1000

// batchRequest is the JSON batch form of POST /pub.
type batchRequest struct {
	Events []batchEvent `json:"events"`
}

type batchEvent struct {
	Channel  string          `json:"channel"`
	Channels []string        `json:"channels"`
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
	Key      string          `json:"key"`
}

// PublishResult is one published event in a publish response.
type PublishResult struct {
	Channel string `json:"channel"`
	ID      string `json:"id,omitempty"`
	// Status and Error are set in a 207 answer (a batch on a Redis
	// Cluster that was published on some shards only): 201 for a published
	// event; 503 (not published: retry it) or 504 (outcome unknown: retry
	// it with the same key) for the others, with the reason.
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// handlePublish serves POST /pub?id={channel} (the body is the event data,
// as nchan and push-stream take it; the event name comes from ?event= or
// X-EventSource-Event) and the JSON batch form POST /pub with
// {"events":[{"channel"|"channels", "event", "data", "key"}]}.
func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	if !s.authorizePublish(w, r) {
		return
	}
	key, err := requestKey(r)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set(IdempotencyHeader, key)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes (--max-body)", s.cfg.MaxBodyBytes))
			return
		}
		s.fail(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	q := r.URL.Query()
	var msgs []PublishMessage
	single := q.Has("id")
	if single {
		ev := q.Get("event")
		if ev == "" {
			ev = r.Header.Get("X-EventSource-Event")
		}
		msgs = []PublishMessage{{Channel: q.Get("id"), Event: ev, Data: body, Key: key}}
	} else {
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if ct != "application/json" {
			s.fail(w, http.StatusBadRequest, "missing ?id={channel}: publish the body to one channel with POST /pub?id={channel}, or send a JSON batch with Content-Type: application/json")
			return
		}
		if msgs, err = parseBatch(body, key); err != nil {
			s.fail(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	ids, err := s.Publish(r.Context(), msgs)
	var partial *broker.PartialError
	if errors.As(err, &partial) && !single {
		s.log.Warn("batch published in part", "err", err, "events", len(msgs))
		results := make([]PublishResult, len(msgs))
		for i, e := range partial.Errs {
			results[i] = PublishResult{Channel: msgs[i].Channel, Status: http.StatusCreated}
			switch {
			case e == nil:
				results[i].ID = partial.IDs[i].String()
			case outcomeUnknown(e):
				results[i].Status, results[i].Error = http.StatusGatewayTimeout, "outcome unknown; retry with the same key: "+e.Error()
			default:
				results[i].Status, results[i].Error = http.StatusServiceUnavailable, "not published; retry: "+e.Error()
			}
		}
		writeJSON(w, http.StatusMultiStatus, map[string]any{"events": results})
		return
	}
	if err != nil {
		switch {
		case errors.Is(err, ErrInvalidChannel), errors.Is(err, ErrInvalidEvent):
			s.fail(w, http.StatusBadRequest, err.Error())
		case errors.Is(err, broker.ErrClosed):
			writeUncertain(w, http.StatusServiceUnavailable, key, "server is shutting down; nothing was published: publish to another node")
		case outcomeUnknown(err):
			s.log.Warn("publish outcome unknown", "err", err, "events", len(msgs))
			writeUncertain(w, http.StatusGatewayTimeout, key, "publish outcome unknown: the broker took the command and did not answer, so the event may be delivered; a retry with the same Idempotency-Key publishes it once: "+err.Error())
		default:
			s.log.Warn("publish failed", "err", err, "events", len(msgs))
			writeUncertain(w, http.StatusServiceUnavailable, key, "publish failed, nothing was published; retry (with the same Idempotency-Key, to be safe): "+err.Error())
		}
		return
	}
	results := make([]PublishResult, len(ids))
	for i, id := range ids {
		results[i] = PublishResult{Channel: msgs[i].Channel, ID: id.String()}
	}
	if single {
		writeJSON(w, http.StatusCreated, results[0])
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"events": results})
}

// parseBatch decodes and checks a JSON batch strictly. An event without a
// "key" gets the request's key and its index (key#i), so a retried batch
// is published once.
func parseBatch(body []byte, key string) ([]PublishMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req batchRequest
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("bad JSON batch: %v (want {\"events\":[{\"channel\":\"c\",\"event\":\"e\",\"data\":\"...\"}]})", err)
	}
	if dec.More() {
		return nil, errors.New("bad JSON batch: trailing data after the object")
	}
	if len(req.Events) == 0 {
		return nil, errors.New("bad JSON batch: \"events\" is empty")
	}
	var msgs []PublishMessage
	for i, e := range req.Events {
		chans := e.Channels
		if e.Channel != "" {
			chans = append([]string{e.Channel}, chans...)
		}
		if len(chans) == 0 {
			return nil, fmt.Errorf("bad JSON batch: events[%d] has no \"channel\" or \"channels\"", i)
		}
		if e.Data == nil {
			return nil, fmt.Errorf("bad JSON batch: events[%d] has no \"data\"", i)
		}
		data := []byte(e.Data)
		if len(data) > 0 && data[0] == '"' {
			var str string
			if err := json.Unmarshal(data, &str); err != nil {
				return nil, fmt.Errorf("bad JSON batch: events[%d].data: %v", i, err)
			}
			data = []byte(str)
		}
		k := e.Key
		if k == "" {
			k = itemKey(key, i)
		}
		for _, c := range chans {
			msgs = append(msgs, PublishMessage{Channel: c, Event: e.Event, Data: data, Key: k})
		}
		if len(msgs) > maxBatchEvents {
			return nil, fmt.Errorf("bad JSON batch: more than %d events", maxBatchEvents)
		}
	}
	return msgs, nil
}

// outcomeUnknown reports a broker error after which the publish may have
// happened (504). Only a refusal the broker classified — not sent, refused
// by Redis (ErrUnavailable), or a closed broker — is a certain "not done"
// (503); an error it did not classify could be either, and says so.
func outcomeUnknown(err error) bool {
	return !errors.Is(err, broker.ErrUnavailable) && !errors.Is(err, broker.ErrClosed) &&
		!errors.Is(err, ErrInvalidChannel) && !errors.Is(err, ErrInvalidEvent)
}
