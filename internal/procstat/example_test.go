package procstat_test

import (
	"fmt"
	"os"

	"github.com/darktime/darktime/internal/procstat"
)

func ExampleTree() {
	before, err := procstat.Tree(os.Getpid())
	if err != nil {
		fmt.Println(err)
		return
	}
	after, _ := procstat.Tree(os.Getpid())
	fmt.Println("CPU never runs backwards:", after.CPU >= before.CPU)
	// Output: CPU never runs backwards: true
}
