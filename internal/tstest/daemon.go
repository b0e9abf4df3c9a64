package tstest

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

// Daemon is a server process a test started (a private PostgreSQL, a
// Prometheus): StartDaemon runs it until it is ready, Stop ends it.
type Daemon struct {
	cmd    *exec.Cmd
	exited chan error
}

// StartDaemon starts cmd with its output appended to the file log and
// calls ready every 50 ms until it returns nil (the daemon answers), for
// at most 30 s. When the process exits first, or is not ready in time
// (then it is killed), the error names it and carries its log.
func StartDaemon(name string, cmd *exec.Cmd, log string, ready func() error) (*Daemon, error) {
	logf, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	d := &Daemon{cmd: cmd, exited: make(chan error, 1)}
	go func() { d.exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-d.exited:
			b, _ := os.ReadFile(log)
			return nil, fmt.Errorf("%s exited: %v\n%s", name, err, b)
		default:
		}
		if ready() == nil {
			return d, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-d.exited
	b, _ := os.ReadFile(log)
	return nil, fmt.Errorf("%s was not ready within 30 s:\n%s", name, b)
}

// Stop sends sig and kills the daemon if it has not exited in 15 s.
func (d *Daemon) Stop(sig os.Signal) {
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}
