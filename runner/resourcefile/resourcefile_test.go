package resourcefile

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestRoundTripAndChecks(t *testing.T) {
	t.Parallel()
	f := &File{IntervalS: 1, Processes: []Process{
		{Name: "primary-0", Role: RoleNode, Samples: []Sample{
			{T: 100, PID: 7, CPUSeconds: 1, RSSBytes: 10, FDs: 3, Node: &NodeCounters{Written: 5}},
			{T: 101, PID: 7, CPUSeconds: 1.2, RSSBytes: 11, FDs: 4, Node: &NodeCounters{Written: 9}},
		}},
		{Name: "redis", Role: RoleRedis, Samples: []Sample{{T: 100.5, PID: 8}}},
	}}
	var b bytes.Buffer
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Schema != Schema || len(got.Processes) != 2 || got.Processes[0].Samples[1].Node.Written != 9 {
		t.Errorf("read back %+v", got)
	}
	for _, c := range []struct {
		name, json, want string
	}{
		{"schema", `{"schema":"x","interval_s":1}`, `schema "x"`},
		{"interval", `{"schema":"darktime.resources/v1","interval_s":0}`, "interval_s 0"},
		{"role", `{"schema":"darktime.resources/v1","interval_s":1,"processes":[{"name":"a","role":"db"}]}`, `role "db"`},
		{"twice", `{"schema":"darktime.resources/v1","interval_s":1,"processes":[{"name":"a","role":"node"},{"name":"a","role":"node"}]}`, "given twice"},
		{"order", `{"schema":"darktime.resources/v1","interval_s":1,"processes":[{"name":"a","role":"node","samples":[{"t":2,"pid":1},{"t":2,"pid":1}]}]}`, "not after"},
		{"negative", `{"schema":"darktime.resources/v1","interval_s":1,"processes":[{"name":"a","role":"node","samples":[{"t":2,"pid":1,"fds":-1}]}]}`, "negative"},
		{"truncated", `{"schema":"darktime.resources/v1","interval_s":1,"proc`, "unexpected EOF"},
	} {
		_, err := Read(strings.NewReader(c.json))
		if !errors.Is(err, ErrResources) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrResources with %q", c.name, err, c.want)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add(`{"schema":"darktime.resources/v1","interval_s":1,"processes":[{"name":"a","role":"node","samples":[{"t":2,"pid":1}]}]}`)
	f.Add(`{"schema":"darktime.resources/v1","interval_s":1e308}`)
	f.Fuzz(func(t *testing.T, s string) {
		file, err := Read(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, ErrResources) {
				t.Fatalf("%q: %v does not wrap ErrResources", s, err)
			}
			return
		}
		if err := file.Check(); err != nil {
			t.Fatalf("%q read but does not check: %v", s, err)
		}
	})
}
