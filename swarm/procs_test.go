package swarm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/internal/tstest"
	"github.com/darktime/darktime/server"
)

// workerEnv makes the test binary a RunProcs worker (see TestMain): its
// value is a folder for a copy of the result, or "fail:N" to make part N
// exit without one.
const workerEnv = "DARKTIME_SWARM_TEST_WORKER"

// procsWorker runs the RunSpec on stdin, as `darktime swarm worker
// --spec -` does.
func procsWorker(env string) int {
	spec, err := ReadSpec(os.Stdin)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		return 3
	}
	if env == "fail:"+strconv.Itoa(spec.Part.Index) {
		return 4
	}
	if err := RunWorker(context.Background(), spec, os.Stderr); err != nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	if dir, ok := strings.CutPrefix(env, "copy:"); ok {
		b, err := os.ReadFile(spec.Out)
		if err != nil || os.WriteFile(filepath.Join(dir, filepath.Base(spec.Out)), b, 0o644) != nil {
			return 1
		}
	}
	return 0
}

func TestRunProcs(t *testing.T) {
	tstest.Long(t, "a swarm split over child processes (~5 s)")
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	cfg.Logger = nil
	cfg.RunID, cfg.ChannelPrefix = "procs", "procs"
	dir := t.TempDir()
	worker := func(env string) Procs {
		return Procs{N: 2, Command: func(ctx context.Context, part Part) *exec.Cmd {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), workerEnv+"="+env)
			cmd.Stderr = os.Stderr
			return cmd
		}}
	}
	res, err := RunProcs(context.Background(), cfg, worker("copy:"+dir))
	if err != nil {
		t.Fatal(err)
	}
	checkBalanced(t, res)
	if len(res.Parts) != 2 || res.Missing() != nil || res.Clients.Planned != int64(cfg.Clients) {
		t.Errorf("parts %+v, clients %+v", res.Parts, res.Clients)
	}
	var sum ledger.Counts
	for _, name := range []string{"part-0.json", "part-1.json"} {
		f, err := os.Open(dir + "/" + name)
		if err != nil {
			t.Fatal(err)
		}
		part, err := ReadResult(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		sum = sum.Add(part.Ledger.Totals())
	}
	if got := res.Ledger.Totals(); got != sum {
		t.Errorf("merged ledger %+v, parts sum to %+v", got, sum)
	}

	// A worker that dies without a result: the other's result, the error
	// naming the worker.
	res, err = RunProcs(context.Background(), cfg, worker("fail:1"))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "worker 1") {
		t.Fatalf("err %v, want worker 1's exit", err)
	}
	if res == nil || len(res.Missing()) != 1 || res.Missing()[0].Index != 1 {
		t.Fatalf("result %+v: want part 1 missing", res)
	}
	checkBalanced(t, res)
}
