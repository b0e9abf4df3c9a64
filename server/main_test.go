package server

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them:
// every goroutine the server starts has an owner that waits for it.
func TestMain(m *testing.M) {
	if os.Getenv(workerProcessEnv) != "" {
		runWorkerProcess() // a child process of TestWorkerKilledMidJob
		return
	}
	goleak.VerifyTestMain(m,
		// net/http keeps idle client connections of the tests' default client.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
