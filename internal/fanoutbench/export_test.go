package fanoutbench

import (
	"os"
	"testing"
)

func TestProcessCPU(t *testing.T) {
	t.Parallel()
	if _, err := ProcessCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	if SelfCPU() <= 0 {
		t.Fatal("no CPU time for this process")
	}
}
