package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// inProcess runs `darktime ARGS...` in-process and returns the exit status
// main would give and what was printed.
func inProcess(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	var ue usageError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ue):
		return 2, out.String() + err.Error()
	}
	return 1, out.String() + err.Error()
}

// runCmd runs `darktime run --skip-binary-check ARGS...`.
func runCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return inProcess(t, append([]string{"run", "--skip-binary-check"}, args...)...)
}

func TestRunCheckExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--check", "../../scenarios/ci-smoke.yaml", "../../scenarios/vs-nchan.yaml"}, 0, "ok ../../scenarios/vs-nchan.yaml"},
		{[]string{"--check", "../../scenario/testdata/node-missing.yaml"}, 2, "node-missing.yaml:9:26: faults[0].kill_node: node 3 does not exist"},
		{[]string{"--check"}, 2, "give at least one scenario FILE"},
		{[]string{"../../scenarios/ci-smoke.yaml"}, 2, "running scenarios is not implemented yet; use --check"},
	} {
		code, out := runCmd(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("darktime run %v: exit %d, want %d; output:\n%s\nwant it to hold %q", c.args, code, c.code, out, c.want)
		}
	}
}
