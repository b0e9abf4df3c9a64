package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/ledger"
	"github.com/darktime/darktime/server"
)

// workerEnv makes the test binary a RunProcs worker (see TestMain).
const workerEnv = "DARKTIME_SWARM_TEST_WORKER"

// workerSpec is what a test worker runs.
type workerSpec struct {
	Config Config
	Out    string // where RunProcs wants the result
	Copy   string // a second copy for the test to read
	Fail   bool   // exit without a result
}

// procsWorker runs one part, as `darktime swarm --part` does.
func procsWorker(specJSON string) int {
	var spec workerSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return 3
	}
	if spec.Fail {
		return 4
	}
	res, err := Run(context.Background(), spec.Config)
	if res == nil {
		os.Stderr.WriteString(err.Error())
		return 1
	}
	for _, path := range []string{spec.Out, spec.Copy} {
		f, err := os.Create(path)
		if err != nil {
			return 1
		}
		if err := res.Write(f); err != nil {
			return 1
		}
		f.Close()
	}
	return 0
}

func TestRunProcs(t *testing.T) {
	t.Parallel()
	target := startServer(t, server.Config{})
	cfg := quickConfig(t, target)
	cfg.Logger = nil
	cfg.RunID, cfg.ChannelPrefix = "procs", "procs"
	dir := t.TempDir()
	worker := func(failPart int) WorkerCommand {
		return func(ctx context.Context, part Part, out string) *exec.Cmd {
			c := cfg
			c.Part = part
			spec, _ := json.Marshal(workerSpec{Config: c, Out: out, Copy: dir + "/" + out[strings.LastIndexByte(out, '/')+1:], Fail: part.Index == failPart})
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), workerEnv+"="+string(spec))
			cmd.Stderr = os.Stderr
			return cmd
		}
	}
	res, err := RunProcs(context.Background(), 2, worker(-1))
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
	res, err = RunProcs(context.Background(), 2, worker(1))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "worker 1") {
		t.Fatalf("err %v, want worker 1's exit", err)
	}
	if res == nil || len(res.Missing()) != 1 || res.Missing()[0].Index != 1 {
		t.Fatalf("result %+v: want part 1 missing", res)
	}
	checkBalanced(t, res)
}
