// Package machine describes the machine a run measured on: cores, CPU
// model, kernel, Go version. A figure is only comparable with figures of
// the same machine, so everything that keeps figures over time (the run
// history, BENCHMARKS.md) names it.
package machine

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Description is one machine, as darktime.history/v1 records it.
type Description struct {
	// Cores is the number of logical CPUs this process may use
	// (runtime.NumCPU: the affinity mask, not the whole host).
	Cores int `json:"cores"`
	// CPUModel is /proc/cpuinfo's "model name" ("" when unknown).
	CPUModel string `json:"cpu_model,omitempty"`
	// Kernel is the kernel release (/proc/sys/kernel/osrelease).
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// String is one line: "2 cores, AMD EPYC 7B13, linux 6.1.0/amd64, go1.26.8".
func (d Description) String() string {
	parts := []string{plural(d.Cores, "core")}
	if d.CPUModel != "" {
		parts = append(parts, d.CPUModel)
	}
	osl := d.OS
	if d.Kernel != "" {
		osl += " " + d.Kernel
	}
	parts = append(parts, osl+"/"+d.Arch, d.GoVersion)
	return strings.Join(parts, ", ")
}

// Same reports whether d and o are the same kind of machine: everything
// but the Go version, which is a change of the build, not the machine.
func (d Description) Same(o Description) bool {
	return d.Cores == o.Cores && d.CPUModel == o.CPUModel && d.Kernel == o.Kernel && d.OS == o.OS && d.Arch == o.Arch
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

// maxProcBytes bounds what is read of a /proc file: cpuinfo of a
// 256-core host is about 400 KB.
const maxProcBytes = 1 << 20

// Describe describes this machine.
func Describe() Description {
	d := Description{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b, err := readProc("/proc/sys/kernel/osrelease"); err == nil {
		d.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := readProc("/proc/cpuinfo"); err == nil {
		d.CPUModel = cpuModel(b)
	}
	return d
}

func readProc(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxProcBytes))
}

// cpuModel is the first "model name" of a /proc/cpuinfo (x86), else its
// first "Model" or "cpu model" (arm64, mips), whitespace collapsed.
func cpuModel(cpuinfo []byte) string {
	fallback := ""
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.Join(strings.Fields(val), " ")
		switch key {
		case "model name":
			return val
		case "Model", "cpu model":
			if fallback == "" {
				fallback = val
			}
		}
	}
	return fallback
}
