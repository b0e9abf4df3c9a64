package server

import (
	"net/http"
	"strings"

	"github.com/darktime/darktime/server/broker"
)

// route is one endpoint. Admin endpoints move to the admin listener with
// Config.SeparateAdmin.
type route struct {
	method, path string
	handler      http.HandlerFunc
	admin        bool
}

func (s *Server) routeTable() []route {
	return []route{
		{"GET", "/sub/{channels...}", s.handleSubscribe, false},
		{"GET", "/sub", s.handleSubscribe, false},
		{"POST", "/pub", s.handlePublish, false},
		{"POST", "/hooks", s.handleHooks, false},
		{"GET", "/healthz", s.handleHealth, false},
		{"GET", "/{$}", s.handleDemoPage, false},
		{"GET", "/queue/stats", s.handleQueueStats, true},
		{"GET", "/queue/dead", s.handleDeadLetters, true},
		{"POST", "/queue/dead/replay", s.handleReplay, true},
		{"GET", "/stats", s.handleStats, true},
		{"GET", "/metrics", s.metrics.ServeHTTP, true},
	}
}

// brokerHealth is a broker that can say whether it delivers (the Redis
// broker: its links up and its probes back in time).
type brokerHealth interface {
	Health() broker.Health
}

// handleHealth answers 200 when the node can deliver, else 503 with the
// reasons: the broker unreachable, a pub/sub link down or lagging. A load
// balancer that takes the node out on 503 sends its subscribers where
// events arrive.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	if bh, ok := s.broker.(brokerHealth); ok {
		if h := bh.Health(); !h.OK {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unhealthy", "reasons": h.Reasons})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// routes builds the public mux and, with Config.SeparateAdmin, the admin
// one.
func (s *Server) routes() {
	var public, admin []route
	for _, rt := range s.routeTable() {
		switch {
		case !rt.admin:
			public = append(public, rt)
			if s.cfg.SeparateAdmin && rt.path == "/healthz" {
				admin = append(admin, rt)
			}
		case s.cfg.SeparateAdmin:
			admin = append(admin, rt)
		default:
			public = append(public, rt)
		}
	}
	s.mux = s.buildMux(public, true)
	if s.cfg.SeparateAdmin {
		s.admin = s.buildMux(admin, false)
	}
}

// probeMethods are the methods a 405's Allow header may list.
var probeMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// buildMux registers routes, the CORS preflight and a fallback that
// answers an unknown path 404 and a known path with a method it does not
// serve 405 with Allow, both with a JSON error.
func (s *Server) buildMux(routes []route, preflight bool) *http.ServeMux {
	mux, probe := http.NewServeMux(), http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.method+" "+rt.path, rt.handler)
		probe.HandleFunc(rt.method+" "+rt.path, rt.handler)
	}
	if preflight {
		mux.HandleFunc("OPTIONS /", s.handlePreflight)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range probeMethods {
			pr := r.Clone(r.Context())
			pr.Method = m
			if _, pattern := probe.Handler(pr); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			s.fail(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path+" (see GET /, /sub/{channel}, POST /pub?id={channel}, /stats, /metrics)")
			return
		}
		if preflight {
			allow = append(allow, "OPTIONS")
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.fail(w, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", "))
	})
	return mux
}

// AdminHandler serves /stats, /metrics, /queue/stats and the dead letters
// (and /healthz) when Config.SeparateAdmin took them off Handler; without
// it, it is Handler.
func (s *Server) AdminHandler() http.Handler {
	if s.admin == nil {
		return s.mux
	}
	return s.admin
}
