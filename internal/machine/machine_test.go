package machine

import (
	"runtime"
	"testing"
)

func TestCPUModel(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC  7B13 64-Core Processor\nmodel name\t: other\n", "AMD EPYC 7B13 64-Core Processor"},
		{"processor\t: 0\nBogoMIPS\t: 50.00\n\nModel\t: Raspberry Pi 4 Model B Rev 1.4\n", "Raspberry Pi 4 Model B Rev 1.4"},
		{"garbage without colons\n", ""},
		{"", ""},
	} {
		if got := cpuModel([]byte(c.in)); got != c.want {
			t.Errorf("cpuModel(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d := Describe()
	if d.Cores != runtime.NumCPU() || d.GoVersion != runtime.Version() || d.OS != runtime.GOOS || d.Arch != runtime.GOARCH {
		t.Errorf("Describe() = %+v", d)
	}
	if runtime.GOOS == "linux" && d.Kernel == "" {
		t.Errorf("no kernel release on linux: %+v", d)
	}
	if !d.Same(d) {
		t.Error("a machine is not the same as itself")
	}
	other := d
	other.GoVersion = "go0"
	if !d.Same(other) {
		t.Error("a new Go version made another machine")
	}
	other.Cores++
	if d.Same(other) {
		t.Error("more cores is the same machine")
	}
}

func TestString(t *testing.T) {
	t.Parallel()
	d := Description{Cores: 2, CPUModel: "AMD EPYC 7B13", Kernel: "6.1.0", GoVersion: "go1.26.8", OS: "linux", Arch: "amd64"}
	if got, want := d.String(), "2 cores, AMD EPYC 7B13, linux 6.1.0/amd64, go1.26.8"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Description{Cores: 1, GoVersion: "go1", OS: "linux", Arch: "arm64"}).String(), "1 core, linux/arm64, go1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
