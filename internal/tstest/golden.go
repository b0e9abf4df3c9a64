package tstest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is `go test -update`: every package whose tests import tstest
// gets it, and Golden rewrites its files instead of comparing.
var update = flag.Bool("update", false, "rewrite the golden files under testdata/ instead of comparing with them")

// Golden compares got with the golden file at path (relative to the
// package, e.g. testdata/x.golden), or writes it under -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update accepts the new one):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
