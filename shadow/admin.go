package shadow

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/darktime/darktime/internal/yamlsafe"
)

// AdminHandler serves the admin API; mount it on a private listener:
//
//	GET  /_darktime/ledger                 the reconciliation ledger (LEDGER.md)
//	GET  /_darktime/config                 the configuration in use, as JSON
//	PUT  /_darktime/config                 replace it with a YAML config (the file's format)
//	POST /_darktime/percent?percent=P[&route=/path/]   change a share of users live
//	GET  /metrics                          Prometheus metrics (when Config.Gatherer is set)
//	GET  /_darktime/healthz                {"status":"ok"}
//
// With Config.AdminToken set, every endpoint but healthz needs
// "Authorization: Bearer TOKEN" (401 with WWW-Authenticate without it,
// 403 when wrong); a state-changing request a browser sends from a page
// of another origin is refused (403) either way.
//
// Errors are a status and {"error": "...", "status": N}. A refused config
// answers 400 (413 over 1 MiB; YAML anchors, aliases and nesting deeper
// than 64 are refused, see internal/yamlsafe) and the old one stays in
// force.
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_darktime/ledger", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, p.Report())
	})
	mux.HandleFunc("GET /_darktime/config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, p.Config())
	})
	mux.HandleFunc("PUT /_darktime/config", func(w http.ResponseWriter, r *http.Request) {
		// One byte over the limit is enough to refuse the body whole
		// instead of parsing a truncated config.
		data, err := io.ReadAll(io.LimitReader(r.Body, yamlsafe.MaxBytes+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if len(data) > yamlsafe.MaxBytes {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("config body over the limit of %d bytes", yamlsafe.MaxBytes))
			return
		}
		cfg, err := LoadConfig(data)
		if err == nil {
			err = p.Reload(cfg)
		}
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, p.Config())
	})
	mux.HandleFunc("POST /_darktime/percent", func(w http.ResponseWriter, r *http.Request) {
		pc, err := ParsePercent(r.FormValue("percent"))
		if err == nil {
			err = p.SetPercent(r.FormValue("route"), pc)
		}
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, p.Config())
	})
	mux.HandleFunc("GET /_darktime/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	if p.gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(p.gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow, ok := adminMethods[r.URL.Path]; ok {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: the admin API serves %s there", r.Method, r.URL.Path, allow))
			return
		}
		writeError(w, http.StatusNotFound, errors.New("no admin endpoint "+r.Method+" "+r.URL.Path))
	})
	return p.adminDoor(mux)
}

// adminMethods is what each admin path serves, for 405's Allow.
var adminMethods = map[string]string{
	"/_darktime/ledger":  "GET, HEAD",
	"/_darktime/config":  "GET, HEAD, PUT",
	"/_darktime/percent": "POST",
	"/_darktime/healthz": "GET, HEAD",
	"/metrics":           "GET, HEAD",
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrInvalidConfig):
		return http.StatusBadRequest
	case errors.Is(err, ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]any{"error": strings.TrimSpace(err.Error()), "status": status})
}
