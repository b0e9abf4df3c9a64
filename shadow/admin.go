package shadow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/darktime/darktime/internal/yamlsafe"
	"github.com/darktime/darktime/shadow/ledgerfile"
)

// AdminHandler serves the admin API; mount it on a private listener:
//
//	GET  /_darktime/ledger[?scope=fleet]   the reconciliation ledger (LEDGER.md); of the whole fleet
//	GET  /_darktime/config                 the configuration in use, as JSON
//	PUT  /_darktime/config                 replace it with a YAML config (the file's format)
//	POST /_darktime/percent?percent=P[&route=/path/]   change a share of users live
//	POST /_darktime/step                   {"name","mode","percent","route"}: a rollout step, a new epoch
//	POST /_darktime/rollback               [{"route": ""}]: share 0 at once, the candidate's streams cut
//	GET  /_darktime/cohorts[?scope=fleet]  the cohorts' evidence of the epoch (LEDGER.md, Cohorts)
//	GET  /metrics                          Prometheus metrics (when Config.Gatherer is set)
//	GET  /_darktime/healthz                {"status":"ok"}
//
// Step and rollback answer {"epoch": N, "step": "name", "config": {...}}
// (the config as GET /_darktime/config shows it); their JSON bodies are
// at most 64 KiB (413 beyond). With a fleet (Config.Fleet) every change
// is the fleet's: written to Redis and applied by every instance; when
// Redis cannot be reached a step changes nothing and answers 503, a
// rollback rolls this instance back and answers 503, and scope=fleet
// answers 503 with the reason.
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
	mux.HandleFunc("GET /_darktime/ledger", func(w http.ResponseWriter, r *http.Request) {
		fleet, err := fleetScope(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if !fleet {
			writeJSON(w, http.StatusOK, p.Report())
			return
		}
		rep, ids, err := p.FleetReport(r.Context())
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		w.Header().Set("X-Darktime-Instances", strings.Join(ids, ","))
		writeJSON(w, http.StatusOK, rep)
	})
	mux.HandleFunc("GET /_darktime/cohorts", func(w http.ResponseWriter, r *http.Request) {
		fleet, err := fleetScope(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err)
			return
		}
		if !fleet {
			writeJSON(w, http.StatusOK, p.Cohorts())
			return
		}
		c, err := p.FleetCohorts(r.Context())
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("POST /_darktime/step", func(w http.ResponseWriter, r *http.Request) {
		var s Step
		if status, err := readJSON(r, &s, false); err != nil {
			writeError(w, status, err)
			return
		}
		res, err := p.Step(s)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("POST /_darktime/rollback", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Route *string `json:"route"`
		}
		if status, err := readJSON(r, &body, true); err != nil {
			writeError(w, status, err)
			return
		}
		res, err := p.Rollback(body.Route)
		if err != nil {
			writeError(w, statusOf(err), err)
			return
		}
		writeJSON(w, http.StatusOK, res)
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
		if err == nil {
			err = p.shareChanged()
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
		if err == nil {
			err = p.shareChanged()
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
	"/_darktime/ledger":   "GET, HEAD",
	"/_darktime/config":   "GET, HEAD, PUT",
	"/_darktime/percent":  "POST",
	"/_darktime/step":     "POST",
	"/_darktime/rollback": "POST",
	"/_darktime/cohorts":  "GET, HEAD",
	"/_darktime/healthz":  "GET, HEAD",
	"/metrics":            "GET, HEAD",
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrInvalidConfig):
		return http.StatusBadRequest
	case errors.Is(err, ErrClosed), errors.Is(err, ErrFleet):
		return http.StatusServiceUnavailable
	case errors.Is(err, ledgerfile.ErrMerge):
		return http.StatusConflict // the fleet's instances are not configured alike
	}
	return http.StatusInternalServerError
}

// maxStepBody bounds the JSON bodies of step and rollback.
const maxStepBody = 64 << 10

// readJSON decodes a bounded JSON body into v, refusing unknown fields
// and trailing data; an empty body is allowed when optional.
func readJSON(r *http.Request, v any, optional bool) (int, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxStepBody+1))
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("reading the body: %w", err)
	}
	if len(data) > maxStepBody {
		return http.StatusRequestEntityTooLarge, fmt.Errorf("body over the limit of %d bytes", maxStepBody)
	}
	if optional && len(bytes.TrimSpace(data)) == 0 {
		return 0, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, fmt.Errorf("the body is not the JSON expected: %w", err)
	}
	if dec.More() {
		return http.StatusBadRequest, errors.New("the body has more than one JSON value")
	}
	return 0, nil
}

// fleetScope reads ?scope=: "" or local, or fleet.
func fleetScope(r *http.Request) (bool, error) {
	switch s := r.URL.Query().Get("scope"); s {
	case "", "local":
		return false, nil
	case "fleet":
		return true, nil
	default:
		return false, fmt.Errorf("scope %q is not local or fleet", s)
	}
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
