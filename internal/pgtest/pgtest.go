// Package pgtest starts a private PostgreSQL server for a test: initdb in
// a temporary folder, postgres on a free loopback port, trust
// authentication, stopped and removed at the test's end. The binaries
// come from $DARKTIME_POSTGRES_BIN, Debian's /usr/lib/postgresql/N/bin
// (the highest N) or PATH; without them the test skips, saying to install
// Debian's postgresql (make deps does). PostgreSQL refuses to run as root,
// so as root the server runs as the user postgres (else nobody), with its
// folder handed to that user.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/darktime/darktime/internal/tstest"
)

// BinEnv names a folder holding initdb and postgres.
const BinEnv = "DARKTIME_POSTGRES_BIN"

// InstallHint says how to get the binaries.
const InstallHint = "apt-get install -y postgresql (or make deps), or set " + BinEnv + " to a folder with initdb and postgres"

// findBin returns the folder of initdb and postgres, or "".
func findBin() string {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "postgres"} {
			if st, err := os.Stat(filepath.Join(dir, p)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if d := os.Getenv(BinEnv); d != "" {
		if has(d) {
			return d
		}
		return ""
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if has(d) {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p)
	}
	return ""
}

// version is N of /usr/lib/postgresql/N/bin.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// Server is a running private PostgreSQL.
type Server struct {
	// URL connects as the superuser darktime to the database postgres.
	URL    string
	daemon *tstest.Daemon
	dir    string
	log    string
}

// credential is who runs the server: nil (this user) unless root.
func credential(t testing.TB) *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil && uid != 0 {
			return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		}
	}
	t.Skip("running as root, and there is no user postgres or nobody to run PostgreSQL as (it refuses root)")
	return nil
}

// Start starts a server for t and returns it; t's cleanup stops it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := findBin()
	if bin == "" {
		t.Skip("PostgreSQL's initdb and postgres not found: " + InstallHint)
	}
	cred := credential(t)
	// Not t.TempDir: its parents are private to this user, and the server
	// may run as another, who must reach the folder: as root, under /tmp
	// (whatever $TMPDIR says, which may be private to root).
	base := ""
	if cred != nil {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "darktime-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("hand %s to uid %d: %v", dir, cred.Uid, err)
		}
	}
	s := &Server{dir: dir, log: filepath.Join(dir, "postgres.log")}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "darktime", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	var lastErr error
	for range 3 { // a free port may be taken before postgres listens
		port := tstest.FreePort(t)
		if lastErr = s.start(bin, data, port, cred); lastErr == nil {
			t.Cleanup(s.stop)
			return s
		}
	}
	t.Fatalf("start postgres: %v", lastErr)
	return nil
}

func (s *Server) start(bin, data string, port int, cred *syscall.Credential) error {
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
	s.URL = fmt.Sprintf("postgres://darktime@127.0.0.1:%d/postgres?sslmode=disable", port)
	d, err := tstest.StartDaemon("postgres", cmd, s.log, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.URL)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		return conn.Ping(ctx)
	})
	s.daemon = d
	return err
}

// stop asks the server for a fast shutdown (SIGINT: abort transactions,
// close connections, exit), and kills it if it has not exited in 15 s.
func (s *Server) stop() { s.daemon.Stop(os.Interrupt) }
