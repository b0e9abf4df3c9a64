package report

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestFilesRunsGroupsByRunID(t *testing.T) {
	t.Parallel()
	var fs Files
	runs, err := fs.Runs(context.Background(), []string{"testdata/run.part0.json", "testdata/clean.json", "testdata/run.part1.json"})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Parts != 2 || runs[1].Parts != 1 {
		t.Fatalf("%d runs: want the two parts of one run merged, then the other run", len(runs))
	}
	if _, err := fs.Runs(context.Background(), []string{"testdata/run.part0.json", "testdata/run.part0.json"}); !errors.Is(err, ErrInput) {
		t.Errorf("a part twice: %v, want ErrInput", err)
	}
}

func TestFilesRun(t *testing.T) {
	t.Parallel()
	var fs Files
	var text strings.Builder
	err := fs.Run(context.Background(), Request{Paths: Paths{Results: []string{"testdata/clean.json"}}, Gates: []string{"lost == 0"}, Text: &text})
	if err != nil || !strings.Contains(text.String(), "PASS lost == 0") {
		t.Errorf("err %v, summary:\n%s", err, text.String())
	}
	err = fs.Run(context.Background(), Request{Paths: Paths{Results: []string{"testdata/clean.json"}}, Gates: []string{"bogus < 1"}})
	if !errors.Is(err, ErrInput) {
		t.Errorf("an unknown metric: %v, want ErrInput", err)
	}
	err = fs.Run(context.Background(), Request{Paths: Paths{Results: []string{"testdata/clean.json"}}, Gates: []string{"p99_delivery_ms < 0.001"}})
	if err == nil || errors.Is(err, ErrInput) {
		t.Errorf("a failed gate: %v, want a failure that is not bad input", err)
	}
}
