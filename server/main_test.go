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
		// After a failed dial go-redis redials a node in the background
		// every second until it answers or its pool is closed, and looks
		// at the pool only between sleeps: a master killed for good (a
		// failover test) leaves one such goroutine per pool for up to a
		// second after the client's Close.
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
	)
}
