package report

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReadersLinkNoEngine: report and scenario read the file formats
// through their leaf packages and link no server, swarm or shadow engine,
// no Redis client, no load generator (issue 13).
func TestReadersLinkNoEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/darktime/darktime/report", "github.com/darktime/darktime/scenario").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, "github.com/redis/go-redis"), strings.HasPrefix(dep, "github.com/tsenart/vegeta"),
			dep == "github.com/darktime/darktime/server", dep == "github.com/darktime/darktime/swarm",
			dep == "github.com/darktime/darktime/shadow", strings.HasPrefix(dep, "github.com/darktime/darktime/server/queue"),
			strings.HasPrefix(dep, "github.com/darktime/darktime/server/worker"), strings.HasPrefix(dep, "github.com/darktime/darktime/server/pipeline"):
			t.Errorf("report or scenario links %s", dep)
		}
	}
}
