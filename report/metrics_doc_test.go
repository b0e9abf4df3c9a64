package report

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// expandBraces expands "{a,b}_{c,d}_ms" into every combination.
func expandBraces(s string) []string {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{s}
	}
	end := strings.IndexByte(s[open:], '}')
	if end < 0 {
		return []string{s}
	}
	end += open
	var out []string
	for _, alt := range strings.Split(s[open+1:end], ",") {
		out = append(out, expandBraces(s[:open]+alt+s[end+1:])...)
	}
	return out
}

var backticked = regexp.MustCompile("`([^`]+)`")

// documentedMetrics reads REPORT.md's metric vocabulary table: the names
// of the run's metrics (first column) and those of a phase (the
// phase.NAME.METRIC row's list).
func documentedMetrics(t *testing.T) (run, phase map[string]bool) {
	t.Helper()
	doc, err := os.ReadFile("REPORT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Metric vocabulary")
	if !ok {
		t.Fatal(`REPORT.md has no "## Metric vocabulary" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	run, phase = map[string]bool{}, map[string]bool{}
	rows := 0
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("REPORT.md: a metric row without two cells: %s", line)
		}
		rows++
		names, meaning := cells[1], cells[2]
		if strings.TrimSpace(names) == "`"+phasePattern+"`" {
			list, _, _ := strings.Cut(meaning[strings.Index(meaning, "METRIC one of"):], ";")
			for _, m := range backticked.FindAllStringSubmatch(list, -1) {
				for _, n := range expandBraces(m[1]) {
					phase[n] = true
				}
			}
			continue
		}
		for _, m := range backticked.FindAllStringSubmatch(names, -1) {
			for _, n := range expandBraces(m[1]) {
				run[n] = true
			}
		}
	}
	if rows < 10 || len(phase) == 0 {
		t.Fatalf("REPORT.md: read %d metric rows and %d phase metrics: has the table's layout changed?", rows, len(phase))
	}
	return run, phase
}

// TestMetricsDocumented holds MetricTable and REPORT.md's "Metric
// vocabulary" to each other: every metric of the table is documented
// (with phase.NAME.METRIC when a phase has it), and every documented
// metric is in the table.
func TestMetricsDocumented(t *testing.T) {
	t.Parallel()
	docRun, docPhase := documentedMetrics(t)
	for _, m := range MetricTable {
		if m.Run != nil && !docRun[m.Name] {
			t.Errorf("metric %s is not documented in REPORT.md's metric vocabulary", m.Name)
		}
		if m.Run == nil && docRun[m.Name] {
			t.Errorf("REPORT.md documents %s as a metric of the run, but only phases have it", m.Name)
		}
		if m.PerPhase() != docPhase[m.Name] {
			t.Errorf("metric %s: per phase %v in MetricTable, %v in REPORT.md's phase.NAME.METRIC list", m.Name, m.PerPhase(), docPhase[m.Name])
		}
	}
	for name := range docRun {
		if m, ok := LookupMetric(name); !ok || m.Run == nil {
			t.Errorf("REPORT.md documents metric %s, which MetricTable does not have", name)
		}
	}
	for name := range docPhase {
		if _, ok := LookupMetric("phase.x." + name); !ok {
			t.Errorf("REPORT.md documents phase metric %s, which MetricTable does not have per phase", name)
		}
	}
}

// TestMetricTable: names are unique, and every metric has a unit, a
// meaning and at least one way to compute it.
func TestMetricTable(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	units := []string{UnitMs, UnitCount, UnitPerS, UnitRatio, UnitSeconds}
	for _, m := range MetricTable {
		switch {
		case seen[m.Name]:
			t.Errorf("metric %s is in MetricTable twice", m.Name)
		case !slices.Contains(units, m.Unit):
			t.Errorf("metric %s: unit %q", m.Name, m.Unit)
		case m.Help == "":
			t.Errorf("metric %s has no meaning", m.Name)
		case m.Run == nil && m.Span == nil:
			t.Errorf("metric %s is computed neither for the run nor for a phase", m.Name)
		}
		seen[m.Name] = true
	}
	// Names other code gives are names of the table.
	for _, name := range DefaultCompareMetrics {
		if _, ok := LookupMetric(name); !ok {
			t.Errorf("DefaultCompareMetrics names %s, which is not a metric", name)
		}
	}
	for _, g := range withDefaults(nil) {
		if _, ok := LookupMetric(g.Metric); !ok {
			t.Errorf("default gate %s names no metric", g.Expr)
		}
	}
	// Every metric of a report comes from the table, and every metric the
	// table computes for the run is in a report whose inputs give it all
	// (the latency of the histograms the golden run recorded).
	r := faultyReport(t)
	recorded := func(name string) bool {
		for _, h := range histNames {
			if strings.HasSuffix(name, "_"+h+"_ms") {
				_, ok := r.Latency[h]
				return ok
			}
		}
		return true
	}
	for name := range r.Metrics {
		if m, ok := tableMetric(name); !ok || m.Run == nil {
			t.Errorf("the report has metric %s, which MetricTable does not compute for the run", name)
		}
	}
	for _, m := range Vocabulary {
		// A scenario's faults are no input of it: TestScenarioGoldenOutputs.
		if _, ok := r.Metrics[m.Name]; !ok && m.Name != phasePattern && m.Needs != "faults" && recorded(m.Name) {
			t.Errorf("metric %s is missing from a report with every input", m.Name)
		}
	}
}

func TestExpandBraces(t *testing.T) {
	t.Parallel()
	got := expandBraces("{p50,max}_{delivery,connect}_ms")
	want := []string{"p50_delivery_ms", "p50_connect_ms", "max_delivery_ms", "max_connect_ms"}
	if !slices.Equal(got, want) {
		t.Errorf("expandBraces = %v, want %v", got, want)
	}
}

// TestWindowedMetricsDocumented: REPORT.md's "Windowed gates" lists
// exactly the metrics that take a window.
func TestWindowedMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("REPORT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Windowed gates")
	if !ok {
		t.Fatal(`REPORT.md has no "## Windowed gates" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, list, _ := strings.Cut(section, "**Metrics that take a window**")
	list, _, _ = strings.Cut(list, "The others")
	documented := map[string]bool{}
	for _, m := range backticked.FindAllStringSubmatch(list, -1) {
		for _, n := range expandBraces(m[1]) {
			documented[n] = true
		}
	}
	for _, m := range MetricTable {
		if m.Windowed() != documented[m.Name] {
			t.Errorf("%s: takes a window %v, documented as taking one %v", m.Name, m.Windowed(), documented[m.Name])
		}
		delete(documented, m.Name)
	}
	for n := range documented {
		t.Errorf("REPORT.md says %s takes a window: no such metric", n)
	}
}
