package canary

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/darktime/darktime/internal/tstest"
)

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	tstest.Golden(t, filepath.Join("testdata", name), got)
}

// TestPlanFiles parses every testdata/plans/*.yaml: the good plan's
// parsed form, and each bad plan's error message, are golden.
func TestPlanFiles(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/plans/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatal("no plans", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := ReadPlanFile(t.Context(), file, false)
			if strings.HasPrefix(name, "good") {
				if err != nil {
					t.Fatal(err)
				}
				got, _ := json.MarshalIndent(planDoc(p), "", "  ")
				golden(t, "plans/"+name+".golden", append(got, '\n'))
				return
			}
			if err == nil {
				t.Fatalf("%s accepted: %+v", file, p)
			}
			if !errors.Is(err, ErrInvalidPlan) {
				t.Errorf("%v does not wrap ErrInvalidPlan", err)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows a secret: %v", err)
			}
			golden(t, "plans/"+name+".golden", []byte(err.Error()+"\n"))
		})
	}
}

func TestPlanDefaults(t *testing.T) {
	t.Parallel()
	p, err := ParsePlan([]byte("admin: [http://127.0.0.1:9092/]\nsteps:\n  - {name: a, mode: divert, percent: 1, max_duration: 1m}\nwebhooks: {rollback: {url: http://h/}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Poll != DefaultPoll || p.Admin[0] != "http://127.0.0.1:9092" || p.Webhooks.Rollback.Timeout != DefaultWebhookTimeout || p.Route != "" {
		t.Fatalf("defaults: %+v", p)
	}
}

func TestPlanBounds(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		name, content, want string
	}{
		{"nested", "admin: " + tstest.Nested(100), "nesting deeper than"},
		{"big", "admin: [http://h]\n" + strings.Repeat("# x\n", 300_000), "over the limit"},
	} {
		path := tstest.WriteFile(t, dir, c.name+".yaml", c.content)
		if _, err := ReadPlanFile(t.Context(), path, false); err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalidPlan) {
			t.Errorf("%s: %v; want an ErrInvalidPlan with %q", c.name, err, c.want)
		}
	}
	fifo := tstest.FIFO(t, dir, "plan.fifo")
	if _, err := ReadPlanFile(t.Context(), fifo, false); err == nil || !strings.Contains(err.Error(), "--allow-special-files") {
		t.Errorf("a FIFO: %v", err)
	}
}

func FuzzParsePlan(f *testing.F) {
	files, _ := filepath.Glob("testdata/plans/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePlan(data)
		if err != nil {
			var pe *PlanError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidPlan) {
				t.Fatalf("%v is not a *PlanError", err)
			}
			return
		}
		// What is accepted is valid, and stays so.
		q := p
		if err := q.Validate(); err != nil {
			t.Fatalf("accepted, then refused: %v", err)
		}
		if len(p.Admin) == 0 || len(p.Steps) == 0 || p.Poll <= 0 {
			t.Fatalf("accepted an incomplete plan: %+v", p)
		}
		for _, s := range p.Steps {
			if s.MaxDuration <= 0 || s.Percent <= 0 || s.Percent > 100 {
				t.Fatalf("accepted step %+v", s)
			}
		}
	})
}

// TestExamplePlan: the plan README shows (examples/canary.yaml) parses.
func TestExamplePlan(t *testing.T) {
	t.Parallel()
	p, err := ReadPlanFile(t.Context(), "../examples/canary.yaml", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Steps) != 6 || p.Steps[5].Percent != 100 || !p.Baseline || p.Webhooks.ConfirmPromotion == nil {
		t.Fatalf("examples/canary.yaml: %+v", p)
	}
}
