package history

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"

	"github.com/darktime/darktime/internal/pgtest"
)

// testStore is the conformance suite every Store passes: open returns a
// store on an empty history, reopen another store on the same one.
func testStore(t *testing.T, open, reopen func(t *testing.T) Store) {
	ctx := context.Background()
	st := open(t)
	a := synthetic("smoke", 5, 1, 0.03, map[string]level{"p99_delivery_ms": flat(20), "lost": flat(0)})
	b := synthetic("vs-nchan", 3, 2, 0.03, map[string]level{"p99_delivery_ms": flat(30)})
	for i := range b {
		b[i].Target = "nchan"
		b[i].RunID = "b-" + b[i].RunID
	}
	b[2].Metrics["lost"] = 1
	var all []Record
	for i := range 5 { // interleaved: order is append order
		all = append(all, a[i])
		if i < 3 {
			all = append(all, b[i])
		}
	}
	for _, r := range all {
		if err := st.Append(ctx, r); err != nil {
			t.Fatalf("append %s: %v", r.RunID, err)
		}
	}
	ids := func(rs []Record) []string {
		out := []string{}
		for _, r := range rs {
			out = append(out, r.RunID)
		}
		return out
	}
	for _, c := range []struct {
		f    Filter
		want []string
	}{
		{Filter{}, ids(all)},
		{Filter{Scenario: "smoke"}, ids(a)},
		{Filter{Target: "nchan"}, ids(b)},
		{Filter{Scenario: "vs-nchan", Target: "nchan", Limit: 2}, ids(b[1:])},
		{Filter{Metric: "lost"}, []string{"run-001", "run-002", "run-003", "b-run-003", "run-004", "run-005"}},
		{Filter{Limit: 3}, ids(all[len(all)-3:])},
		{Filter{Scenario: "nothing"}, []string{}},
	} {
		got, err := st.List(ctx, c.f)
		if err != nil {
			t.Fatalf("List(%+v): %v", c.f, err)
		}
		if !slices.Equal(ids(got), c.want) {
			t.Errorf("List(%+v) = %v, want %v", c.f, ids(got), c.want)
		}
	}
	// A run appended again is refused, and not counted twice.
	if err := st.Append(ctx, a[0]); !errors.Is(err, ErrDuplicate) {
		t.Errorf("append %s again: %v, want ErrDuplicate", a[0].RunID, err)
	}
	// The same run for another target is another record.
	other := a[0]
	other.Target = "compare"
	if err := st.Append(ctx, other); err != nil {
		t.Errorf("append %s for another target: %v", other.RunID, err)
	}
	// A record that does not validate is never written.
	bad := a[1]
	bad.RunID = "bad"
	bad.Scenario = ""
	if err := st.Append(ctx, bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("append a record without a scenario: %v, want ErrMalformed", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	again := reopen(t)
	defer again.Close()
	got, err := again.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := append(ids(all), other.RunID); !slices.Equal(ids(got), want) {
		t.Errorf("reopened: %v, want %v", ids(got), want)
	}
	if len(got) > 0 && (got[0].Machine != testMachine || got[0].Metrics["p99_delivery_ms"] != all[0].Metrics["p99_delivery_ms"] ||
		!got[0].Time.Equal(all[0].Time) || got[0].Commit != all[0].Commit) {
		t.Errorf("reopened: %+v, want %+v", got[0], all[0])
	}
}

func TestJSONLStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "history") // created by the first append
	open := func(t *testing.T) Store {
		st, err := Open(context.Background(), dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	testStore(t, open, open)
}

// TestPostgresStore runs the suite on a private PostgreSQL server
// (internal/pgtest: initdb and postgres on a free loopback port).
func TestPostgresStore(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t)
	open := func(t *testing.T) Store {
		st, err := Open(context.Background(), srv.URL, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	testStore(t, open, open)

	// Two stores creating the table at once (two first runs) both work.
	ctx := context.Background()
	url := srv.URL[:len(srv.URL)-len("postgres?sslmode=disable")] + "postgres?sslmode=disable&search_path=fresh"
	st0, err := OpenPostgres(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st0.conn.Exec(ctx, "CREATE SCHEMA fresh"); err != nil {
		t.Fatal(err)
	}
	st0.Close()
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			st, err := OpenPostgres(ctx, url)
			if err == nil {
				err = st.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent open: %v", err)
		}
	}
}

func TestOpenBadLocations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "plain")
	if err := writeFile(file, "x"); err != nil {
		t.Fatal(err)
	}
	for _, loc := range []string{
		"",
		"mysql://localhost/db",
		"postgres://user@127.0.0.1:1/db?sslmode=disable&connect_timeout=2", // nothing listens on port 1
		"postgres://user@[::1/db",
		"postgres://user@127.0.0.1:5432/db?sslmode=bogus",
		file, // a file that is not .jsonl, where a folder was meant
	} {
		st, err := Open(ctx, loc, Options{})
		if !errors.Is(err, ErrInput) {
			t.Errorf("Open(%q) = %v, %v; want ErrInput", loc, st, err)
		}
	}
	// A missing history lists as an error that says why.
	st, err := Open(ctx, filepath.Join(t.TempDir(), "none"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.List(ctx, Filter{}); !errors.Is(err, ErrInput) {
		t.Errorf("List of a missing history: %v, want ErrInput", err)
	}
}
