// Package nchanconf is the nginx + nchan configuration darktime runs nchan
// with: `start: nchan` in scenarios (the runner), the nchan tests (through
// internal/tstest's Nchan) and scripts/bench-fanout.sh all use
// nchan-nginx.conf in this folder.
//
// The file is embedded (go:embed) rather than read at run time, so that a
// darktime binary starts nchan from any working folder and a fresh clone
// needs nothing outside itself. It lives in internal/ rather than beside
// the runner because the tests need it too (tstest.Nchan, used by the
// swarm's tests), and the swarm cannot import the runner (the runner
// imports the swarm).
package nchanconf

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File is nchan-nginx.conf as it is in the repository: nginx can run it
// as is (`nginx -c nchan-nginx.conf`, Debian's module path relative to
// nginx's prefix), listening on Addr.
//
//go:embed nchan-nginx.conf
var File string

// Addr is where File listens.
const Addr = "127.0.0.1:8090"

// MaxConns is File's worker_connections: the most subscribers its one
// worker holds.
const MaxConns = 19_000

// Modules are where Debian's libnginx-mod-nchan puts the module.
var Modules = []string{"/usr/lib/nginx/modules/ngx_nchan_module.so", "/usr/share/nginx/modules/ngx_nchan_module.so"}

// Module returns the first of Modules that exists, or "" when nchan is
// not installed.
func Module() string {
	for _, m := range Modules {
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	return ""
}

// InstallHint is what to run when nginx or the module is missing.
const InstallHint = "apt-get install -y nginx-light libnginx-mod-nchan (or make deps)"

// Options adapt File to one private nginx.
type Options struct {
	// Dir is nginx's folder (required, absolute): its pid file, error log
	// and request-body temp files go there.
	Dir string
	// Module is the nchan module's path (default Module()).
	Module string
	// Listen is the address to listen on (default Addr).
	Listen string
}

// Render returns File adapted to o: the module's absolute path, the
// listen address, daemon off, and every file nginx writes in o.Dir. Run it
// with `nginx -p DIR -c FILE -e DIR/error.log` (-e: errors before the file
// is read). It fails when File no longer holds what it rewrites.
func Render(o Options) (string, error) {
	if o.Dir == "" || !filepath.IsAbs(o.Dir) {
		return "", fmt.Errorf("nchanconf: Dir %q must be an absolute path", o.Dir)
	}
	if o.Module == "" {
		if o.Module = Module(); o.Module == "" {
			return "", fmt.Errorf("nchanconf: the nchan module is not installed (%s): %s", Modules[0], InstallHint)
		}
	}
	if o.Listen == "" {
		o.Listen = Addr
	}
	text := File
	var errs []error
	replace := func(old, new string) {
		if !strings.Contains(text, old) {
			errs = append(errs, fmt.Errorf("nchanconf: nchan-nginx.conf no longer holds %q", old))
			return
		}
		text = strings.Replace(text, old, new, 1)
	}
	replace("load_module modules/ngx_nchan_module.so;", "load_module "+o.Module+";\ndaemon off;\npid "+filepath.Join(o.Dir, "nginx.pid")+";\nerror_log "+filepath.Join(o.Dir, "error.log")+" warn;")
	replace("http {", "http {\n  client_body_temp_path "+o.Dir+";")
	replace("listen "+Addr, "listen "+o.Listen)
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return text, nil
}
