package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/darktime/darktime/internal/tstest"
)

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o644) }

// jsonlWith is a JSONL history whose file holds content, and the warnings
// it gives.
func jsonlWith(t *testing.T, content string) (*JSONL, *[]string) {
	t.Helper()
	dir := t.TempDir()
	if err := writeFile(filepath.Join(dir, FileName), content); err != nil {
		t.Fatal(err)
	}
	var warns []string
	j, err := OpenJSONL(dir, Options{Warn: func(m string) { warns = append(warns, m) }})
	if err != nil {
		t.Fatal(err)
	}
	return j, &warns
}

func lines(t *testing.T, recs ...Record) string {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		m, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		b.Write(m)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestJSONLTornLastLine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := synthetic("s", 3, 1, 0.03, map[string]level{"p99_delivery_ms": flat(20)})
	full := lines(t, recs[:2]...)
	torn := lines(t, recs[2])[:40] // a writer died 40 bytes into the third
	j, warns := jsonlWith(t, full+torn)
	got, err := j.List(ctx, Filter{})
	if err != nil || len(got) != 2 || len(*warns) != 1 || !strings.Contains((*warns)[0], "torn last line") {
		t.Fatalf("List: %d records, %v, warnings %q; want 2, a warning about the torn line", len(got), err, *warns)
	}
	// The next append cuts the torn line off, and the file is whole again.
	if err := j.Append(ctx, recs[2]); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(j.Path())
	if string(b) != lines(t, recs...) {
		t.Errorf("after the append:\n%s\nwant\n%s", b, lines(t, recs...))
	}
	if len(*warns) != 2 || !strings.Contains((*warns)[1], "cut off the torn last line") {
		t.Errorf("warnings %q: want one about the cut", *warns)
	}
}

// TestJSONLLastLineWithoutNewline: a whole record without its newline (a
// hand edit) is a record, and an append starts a line of its own.
func TestJSONLLastLineWithoutNewline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := synthetic("s", 2, 1, 0.03, map[string]level{"p99_delivery_ms": flat(20)})
	j, warns := jsonlWith(t, strings.TrimSuffix(lines(t, recs[0]), "\n"))
	if got, err := j.List(ctx, Filter{}); err != nil || len(got) != 1 {
		t.Fatalf("List: %d, %v", len(got), err)
	}
	if err := j.Append(ctx, recs[1]); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(j.Path()); string(b) != lines(t, recs...) || len(*warns) != 0 {
		t.Errorf("after the append:\n%s (warnings %q)", b, *warns)
	}
}

func TestJSONLBadFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	recs := synthetic("s", 2, 1, 0.03, map[string]level{"p99_delivery_ms": flat(20)})
	for _, c := range []struct {
		name, content, want string
	}{
		{"a malformed line in the middle", lines(t, recs[0]) + "{not json\n" + lines(t, recs[1]), FileName + ":2: bad history: malformed record"},
		{"another schema", strings.Replace(lines(t, recs[0]), Schema, "darktime.history/v9", 1) + lines(t, recs[1]), `schema "darktime.history/v9"`},
		{"a record without a run id", strings.Replace(lines(t, recs[0]), `"run_id":"run-001"`, `"run_id":""`, 1) + lines(t, recs[1]), "no run_id"},
		{"a line over the limit", lines(t, recs[0]) + strings.Repeat("x", MaxRecordBytes+10) + "\n", "a line over 1048576 bytes"},
		{"a giant last line without newline", strings.Repeat("[", MaxRecordBytes+10), ":1: a line over"},
	} {
		j, _ := jsonlWith(t, c.content)
		_, err := j.List(ctx, Filter{})
		if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: List: %v, want ErrInput saying %q", c.name, err, c.want)
		}
		// Appending to a broken history is refused too: it says what to fix.
		if err := j.Append(ctx, recs[1]); !errors.Is(err, ErrInput) {
			t.Errorf("%s: Append: %v, want ErrInput", c.name, err)
		}
	}
	fifo := tstest.FIFO(t, t.TempDir(), "history.jsonl")
	if _, err := OpenJSONL(fifo, Options{}); !errors.Is(err, ErrInput) {
		t.Errorf("a FIFO: %v, want ErrInput", err)
	}
	// A record too big for a line is refused before it is written.
	j, _ := jsonlWith(t, "")
	j.MaxLineBytes = 100
	if err := j.Append(ctx, recs[0]); !errors.Is(err, ErrMalformed) {
		t.Errorf("a record over the line limit: %v, want ErrMalformed", err)
	}
}

// TestJSONLConcurrentAppends: 8 appenders with 25 records each, each its
// own store (its own descriptor and lock), leave 200 whole lines.
func TestJSONLConcurrentAppends(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	recs := synthetic("s", 25, 1, 0.03, map[string]level{"p99_delivery_ms": flat(20), "p50_delivery_ms": flat(4)})
	var wg sync.WaitGroup
	errs := make(chan error, 8*25)
	for w := range 8 {
		wg.Go(func() {
			j, err := OpenJSONL(dir, Options{})
			if err != nil {
				errs <- err
				return
			}
			for _, r := range recs {
				r.RunID = fmt.Sprintf("w%d-%s", w, r.RunID)
				if err := j.Append(ctx, r); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	j, _ := OpenJSONL(dir, Options{})
	got, err := j.List(ctx, Filter{})
	if err != nil || len(got) != 200 {
		t.Fatalf("List: %d records, %v; want 200", len(got), err)
	}
	b, _ := os.ReadFile(j.Path())
	if n := bytes.Count(b, []byte("\n")); n != 200 {
		t.Errorf("%d lines, want 200", n)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.RunID] {
			t.Errorf("%s twice", r.RunID)
		}
		seen[r.RunID] = true
	}
}
