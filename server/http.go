package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrInvalidChannel and ErrInvalidEvent are returned for names that do not
// match the documented syntax.
var (
	ErrInvalidChannel = errors.New("invalid channel name")
	ErrInvalidEvent   = errors.New("invalid event name")
)

// validChannel checks [A-Za-z0-9_:.-]{1,128}.
func validChannel(name string) error {
	if len(name) == 0 || len(name) > 128 {
		return fmt.Errorf("%w %q: want 1 to 128 characters of A-Z a-z 0-9 _ : . -", ErrInvalidChannel, truncate(name))
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("%w %q: want 1 to 128 characters of A-Z a-z 0-9 _ : . -", ErrInvalidChannel, truncate(name))
		}
	}
	return nil
}

// validEventName checks [A-Za-z0-9_:.-]{1,64}.
func validEventName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("%w %q: want 1 to 64 characters of A-Z a-z 0-9 _ : . -", ErrInvalidEvent, truncate(name))
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return fmt.Errorf("%w %q: want 1 to 64 characters of A-Z a-z 0-9 _ : . -", ErrInvalidEvent, truncate(name))
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == ':' || c == '.' || c == '-'
}

func truncate(s string) string {
	if len(s) > 140 {
		return s[:140] + "..."
	}
	return s
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// fail answers with a JSON error and counts it.
func (s *Server) fail(w http.ResponseWriter, status int, msg string) {
	if status >= 400 && status < 500 {
		s.hub.stats.rejected.Add(1)
	}
	writeJSON(w, status, errorBody{Error: msg, Status: status})
}

// allowOrigin reports whether a browser page from origin may use the API.
func (s *Server) allowOrigin(origin string) (string, bool) {
	for _, o := range s.cfg.CORSOrigins {
		if o == "*" {
			return "*", true
		}
		if strings.EqualFold(o, origin) {
			return origin, true
		}
	}
	return "", false
}

func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	if allow, ok := s.allowOrigin(origin); ok {
		w.Header().Set("Access-Control-Allow-Origin", allow)
		w.Header().Add("Vary", "Origin")
		w.Header().Set("Access-Control-Expose-Headers", "Content-Type, Idempotency-Key")
	}
}

func (s *Server) handlePreflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	allow, ok := s.allowOrigin(origin)
	if origin == "" || !ok {
		s.fail(w, http.StatusForbidden, fmt.Sprintf("origin %q is not in the CORS allow-list (--cors-origin)", origin))
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", allow)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Last-Event-ID, Authorization, Content-Type, X-EventSource-Event, Idempotency-Key")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}
