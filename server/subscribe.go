package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/internal/sse"
	"github.com/darktime/darktime/server/broker"
)

// subscribeChannels collects the channels of GET /sub/{a}/{b} and
// ?channel=a&channel=b (or ?channel=a,b), without duplicates, sorted.
func (s *Server) subscribeChannels(r *http.Request) ([]string, error) {
	var names []string
	if path := r.PathValue("channels"); path != "" {
		names = append(names, strings.Split(path, "/")...)
	}
	for _, v := range r.URL.Query()["channel"] {
		names = append(names, strings.Split(v, ",")...)
	}
	if len(names) == 0 {
		return nil, errors.New("no channel: subscribe with GET /sub/{channel}[/{channel}...] or GET /sub?channel={channel}")
	}
	sort.Strings(names)
	names = slices.Compact(names)
	if len(names) > s.cfg.MaxChannels {
		return nil, fmt.Errorf("%d channels on one connection; the limit is %d", len(names), s.cfg.MaxChannels)
	}
	for _, n := range names {
		if err := validChannel(n); err != nil {
			return nil, err
		}
	}
	return names, nil
}

// missedNotice is the data of a darktime.missed event.
type missedNotice struct {
	Channel     string `json:"channel"`
	LastEventID string `json:"last_event_id"`
	Reason      string `json:"reason"`
}

// handleSubscribe serves the SSE stream.
func (s *Server) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	names, err := s.subscribeChannels(r)
	if err != nil {
		s.fail(w, http.StatusBadRequest, err.Error())
		return
	}
	// Every channel is authorized before anything is subscribed or
	// written, history included (subauth.go).
	until, ok := s.authorizeSubscribe(w, r, names)
	if !ok {
		return
	}
	lastID := r.Header.Get("Last-Event-ID")
	if lastID == "" {
		lastID = r.URL.Query().Get("last_event_id")
	}
	resume := lastID != ""
	var plain eventid.ID
	var cursor eventid.Cursor
	if resume {
		if plain, cursor, err = parseLastEventID(lastID); err != nil {
			s.fail(w, http.StatusBadRequest, fmt.Sprintf("bad Last-Event-ID: %v (send an id this server gave you, or none)", err))
			return
		}
	}
	s.cors(w, r)
	if r.Method == http.MethodHead {
		serveHead(w)
		return
	}

	sub := &subscriber{
		hub:   s.hub,
		multi: len(names) > 1,
		done:  make(chan struct{}),
		chans: make([]*channel, len(names)),
	}
	if sub.multi {
		sub.cursor = eventid.Cursor{}
	}
	if !s.hub.register(sub) {
		s.fail(w, http.StatusServiceUnavailable, "server is shutting down; reconnect to another node")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	for i, name := range names {
		ch, err := s.hub.join(ctx, name, sub)
		if err != nil {
			sub.close(reasonBrokerError)
			sub.settleHeld(nil)
			s.failUnavailable(w, "subscribe", err)
			return
		}
		if !sub.setChannel(i, ch) {
			// Cut (a slow consumer) while joining: detach has run without
			// this channel. The stream ends below, once it has started.
			s.hub.leave(ch, sub)
		}
	}

	start, replayed, err := s.initialBytes(ctx, sub, resume, plain, cursor)
	if err != nil {
		sub.close(reasonBrokerError)
		sub.settleHeld(nil)
		s.failUnavailable(w, "read history", err)
		return
	}

	s.armExpiry(ctx, sub, until, names, replayed)
	if !s.cfg.DisableDirectWrites && r.ProtoMajor == 1 && r.TLS == nil {
		s.serveHijacked(w, sub, start, replayed, r.ProtoMinor == 0)
		return
	}
	s.serveStream(w, r, sub, start, replayed)
}

func (s *Server) failUnavailable(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, errShuttingDown) || errors.Is(err, broker.ErrClosed) {
		s.fail(w, http.StatusServiceUnavailable, "server is shutting down; reconnect to another node")
		return
	}
	s.log.Warn(what+" failed", "err", err)
	s.fail(w, http.StatusServiceUnavailable, what+" failed, the broker is unavailable: "+err.Error())
}

// initialBytes builds what a new stream starts with: the retry hint, then,
// on resume, a darktime.missed notice per channel whose history no longer
// reaches back to the client's id, and the history after it. It returns,
// per channel, the newest id written, so held live events are not sent
// twice. The history events count as replayed once the bytes are written
// (history.written).
func (s *Server) initialBytes(ctx context.Context, sub *subscriber, resume bool, plain eventid.ID, cursor eventid.Cursor) (streamStart, map[*channel]eventid.ID, error) {
	out := sse.AppendRetry(nil, int(s.cfg.RetryHint.Milliseconds()))
	out = append(out, '\n')
	if sub.multi {
		// Start every channel's position at its newest event, so an id this
		// connection sends covers channels that have not had events yet.
		for _, ch := range sub.chans {
			if id, ok := cursor[ch.name]; ok {
				sub.cursor[ch.name] = id
				continue
			}
			if resume && cursor == nil {
				sub.cursor[ch.name] = plain
				continue
			}
			last, err := s.broker.Last(ctx, ch.name)
			if err != nil {
				return streamStart{}, nil, err
			}
			if !last.IsZero() {
				sub.cursor[ch.name] = last
			}
		}
	}
	if !resume {
		return streamStart{bytes: out}, nil, nil
	}
	replayed := map[*channel]eventid.ID{}
	events := 0
	for _, ch := range sub.chans {
		after := plain
		if cursor != nil {
			id, ok := cursor[ch.name]
			if !ok {
				id = cursor.Min() // a channel added since: resume from the oldest position known
			}
			after = id
		}
		h, err := s.broker.History(ctx, ch.name, after)
		if err != nil {
			return streamStart{}, nil, err
		}
		if h.Missed {
			data, _ := json.Marshal(missedNotice{Channel: ch.name, LastEventID: after.String(), Reason: string(h.Reason)})
			out, _ = sse.AppendEvent(out, sse.Event{Event: "darktime.missed", Data: data})
			s.hub.stats.missedNotices.Add(1)
		}
		upTo := after
		for _, d := range h.Events {
			if sub.multi {
				sub.cursor[ch.name] = d.ID
				out = append(out, "id: "...)
				out = sub.appendCursor(out)
				out = append(out, '\n')
			} else {
				out = sse.AppendIDLine(out, d.ID.String())
			}
			out = append(out, d.Body...)
			out = append(out, '\n')
			upTo = d.ID
		}
		events += len(h.Events)
		replayed[ch] = upTo
	}
	return streamStart{bytes: out, events: events}, replayed, nil
}

// streamStart is what a stream starts with, and how many history events it
// carries.
type streamStart struct {
	bytes  []byte
	events int
}

// written counts the history events as replayed: their bytes reached the
// kernel.
func (in streamStart) written(st *nodeStats) { st.historyReplayed.Add(uint64(in.events)) }

// streamHeaders sets the headers of an event stream.
func streamHeaders(h http.Header) {
	h.Set("Content-Type", sse.ContentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
}

// serveHijacked takes over a plain HTTP/1.1 connection: the response is
// written by hand (chunked), the fan-out writes to the socket directly, and
// no goroutine waits per connection except a reader that notices the
// client leaving.
//
// An HTTP/1.0 client cannot read chunks: it gets the stream unframed,
// ended by the connection's close (as nginx answers it).
func (s *Server) serveHijacked(w http.ResponseWriter, sub *subscriber, in streamStart, replayed map[*channel]eventid.ID, http10 bool) {
	streamHeaders(w.Header())
	var head bytes.Buffer
	if http10 {
		w.Header().Set("Connection", "close")
		head.WriteString("HTTP/1.0 200 OK\r\n")
		_ = w.Header().Write(&head)
		head.WriteString("\r\n")
		head.Write(in.bytes)
	} else {
		w.Header().Set("Transfer-Encoding", "chunked")
		w.Header().Set("Connection", "keep-alive")
		head.WriteString("HTTP/1.1 200 OK\r\n")
		_ = w.Header().Write(&head)
		head.WriteString("\r\n")
		fmt.Fprintf(&head, "%x\r\n", len(in.bytes))
		head.Write(in.bytes)
		head.WriteString("\r\n")
	}

	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable after all: serve it the portable way.
		w.Header().Del("Transfer-Encoding")
		w.Header().Del("Connection")
		s.serveStream(w, nil, sub, in, replayed)
		return
	}
	// The subscriber has been receiving events since it joined, and may
	// already have been cut (a slow consumer while history was read): then
	// nobody else will close the connection. It still gets what was read
	// for it — the history it asked for — and then the end of the stream,
	// as any slow consumer cut does, so that it resumes from there.
	sub.mu.Lock()
	if sub.state == stateClosed {
		sub.mu.Unlock()
		sub.settleHeld(replayed)
		_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		end := head.Bytes()
		if !http10 {
			end = append(end, "0\r\n\r\n"...)
		}
		if _, err := conn.Write(end); err == nil {
			in.written(&s.hub.stats)
		}
		_ = conn.Close()
		return
	}
	sub.conn = conn
	sub.fd, sub.direct = fdOf(conn)
	sub.chunked = !http10
	sub.mu.Unlock()
	_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := conn.Write(head.Bytes()); err != nil {
		sub.close(reasonWriteError)
		sub.settleHeld(replayed)
		return
	}
	in.written(&s.hub.stats)
	_ = conn.SetWriteDeadline(time.Time{})
	sub.goLive(replayed)

	if !s.hub.track() {
		return // shutting down: Shutdown closes the subscriber
	}
	go func() {
		defer s.hub.wg.Done()
		buf := make([]byte, 64)
		for {
			if _, err := conn.Read(buf); err != nil {
				sub.close(reasonClientClosed)
				return
			}
		}
	}()
}

// streamBuffered bounds what net/http may still hold of a stream-mode
// write in its buffers (the chunk writer's 2 KiB and the connection's 4
// KiB) when the write fails: only events that end before the bytes
// accepted minus this count as written when a write fails part way.
const streamBuffered = 6 << 10

// serveStream serves through the ResponseWriter (TLS, HTTP/2): this
// goroutine stays with the stream and writes whenever it is woken.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, sub *subscriber, in streamStart, replayed map[*channel]eventid.ID) {
	rc := http.NewResponseController(w)
	streamHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) (int, error) {
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		n, err := w.Write(b)
		if err != nil {
			return max(0, n-streamBuffered), err
		}
		if err := rc.Flush(); err != nil {
			return max(0, n-streamBuffered), err
		}
		return n, nil
	}
	if _, err := write(in.bytes); err != nil {
		sub.close(reasonWriteError)
		sub.settleHeld(replayed)
		return
	}
	in.written(&s.hub.stats)
	sub.wake = make(chan struct{}, 1)
	sub.goLive(replayed)
	var gone <-chan struct{}
	if r != nil {
		gone = r.Context().Done()
	}
	for {
		select {
		case <-sub.wake:
			sub.drainStream(write)
		case <-gone:
			sub.close(reasonClientClosed)
			return
		case <-sub.done:
			return
		}
	}
}
