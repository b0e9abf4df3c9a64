package procstat

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestSelf(t *testing.T) {
	t.Parallel()
	s, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSKiB <= 0 {
		t.Errorf("rss %d KiB, want > 0", s.RSSKiB)
	}
	if Self() <= 0 {
		t.Error("no CPU time for this process")
	}
	if _, err := Process(1 << 30); err == nil {
		t.Error("a pid that does not exist read without error")
	}
}

func TestTreeCountsChildren(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var child Sample
	for deadline := time.Now().Add(2 * time.Second); child.RSSKiB == 0 && time.Now().Before(deadline); {
		var err error
		if child, err = Process(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // until it has exec'd sleep
	}
	self, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := Tree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if child.RSSKiB <= 0 || tree.RSSKiB < self.RSSKiB+child.RSSKiB/2 {
		t.Errorf("tree rss %d KiB, self %d KiB, child %d KiB: the child is missing", tree.RSSKiB, self.RSSKiB, child.RSSKiB)
	}
}

func TestReadUsage(t *testing.T) {
	t.Parallel()
	before, err := Read(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	f, err := os.Create(t.TempDir() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(make([]byte, 1<<16)); err != nil {
		t.Fatal(err)
	}
	after, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.FDs < 4 || after.RSSBytes <= 0 {
		t.Errorf("fds %d, rss %d: want an open file more than stdin/out/err and some memory", after.FDs, after.RSSBytes)
	}
	if got := after.WriteBytes - before.WriteBytes; got < 1<<16 {
		t.Errorf("wchar grew by %d after a 64 KiB write", got)
	}
	if _, err := Read(1 << 30); err == nil {
		t.Error("a pid that does not exist read without error")
	}
}
