package main

import (
	"strings"
	"testing"
)

// reportCmd runs `darktime report ARGS...` in-process.
func reportCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return inProcess(t, append([]string{"report"}, args...)...)
}

func TestReportExitCodes(t *testing.T) {
	const td = "../../report/testdata/"
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{td + "clean.json", "-q", "--gate", "lost == 0"}, 0, ""},
		{[]string{td + "clean.json", "-q", "--gate", "p99_delivery_ms < 0.001"}, 1, "FAIL p99_delivery_ms < 0.001: measured"},
		{[]string{td + "run.part0.json", td + "run.part1.json", "-q", "--gate", "lost == 0"}, 1, "FAIL lost == 0: measured 3"},
		{[]string{td + "clean.json", "--gate", "bogus < 1"}, 2, `unknown metric "bogus"`},
		{[]string{td + "missing.json"}, 2, "no such file"},
		{[]string{td + "run.part0.json", td + "run.part0.json"}, 2, ""},
		{[]string{"compare", td + "base-1.json", td + "base-2.json", td + "base-3.json", "--", td + "cand-1.json", td + "cand-2.json", td + "cand-3.json"}, 1, ""},
	} {
		code, out := reportCmd(t, c.args...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("darktime report %v: exit %d, want %d; output:\n%s\nwant it to hold %q", c.args, code, c.code, out, c.want)
		}
	}
}
