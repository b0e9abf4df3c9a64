package history

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"time"
)

// commitEnv are the CI variables that name the commit under test, in the
// order they are believed.
var commitEnv = []string{"GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "GIT_COMMIT"}

// DetectCommit names the commit a run measured when no --commit is given:
// a CI's variable ($GITHUB_SHA, $CI_COMMIT_SHA, $BUILDKITE_COMMIT,
// $GIT_COMMIT), else `git rev-parse HEAD` in dir when it is in a
// repository, else "".
func DetectCommit(ctx context.Context, dir string) string {
	for _, k := range commitEnv {
		if v := strings.TrimSpace(os.Getenv(k)); v != "" {
			return v
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "HEAD")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
