package report

import (
	_ "embed"
	"encoding/json"
	"html/template"
	"io"
	"maps"
	"slices"
	"time"
)

// The chart library is vendored (report/assets, MIT licence) and embedded
// in every page, so a report opens offline and never calls a CDN.
var (
	//go:embed assets/uPlot.iife.min.js
	uplotJS string
	//go:embed assets/uPlot.min.css
	uplotCSS string
	//go:embed assets/uPlot.LICENSE
	uplotLicense string
	//go:embed assets/report.html.tmpl
	pageTemplate string
)

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":     ms,
	"num":    formatNum,
	"kinds":  func(k map[string]int64) string { return kindsText(k) },
	"window": func(w int64) string { return time.Unix(w, 0).UTC().Format("15:04:05") },
	"secs":   secs,
}).Parse(pageTemplate))

type namedLatency struct {
	Name string
	L    Latency
}

// metricRow is one row of the page's metrics table.
type metricRow struct {
	Name, Unit, Help string
	V                float64
}

// metricRows lists the report's metrics in MetricTable's order, with
// their unit and meaning; names the table does not have (a report of a
// later version, read back) follow, sorted.
func (r *Report) metricRows() []metricRow {
	var rows []metricRow
	for _, m := range MetricTable {
		if v, ok := r.Metrics[m.Name]; ok {
			rows = append(rows, metricRow{m.Name, m.Unit, m.Help, v})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(r.Metrics)) {
		if _, ok := tableMetric(k); !ok {
			rows = append(rows, metricRow{Name: k, V: r.Metrics[k]})
		}
	}
	return rows
}

// WriteHTML writes a self-contained page: tables, and charts of latency
// percentiles over time, the percentile distribution, deliveries/s,
// connections and the ledger balance over time. A scenario run also gets
// its phases and faults, as tables and as bands and lines on the charts
// over time.
func (r *Report) WriteHTML(w io.Writer) error {
	// encoding/json escapes <, > and &, so the data cannot end the script.
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	var lat []namedLatency
	for _, n := range histNames {
		if l, ok := r.Latency[n]; ok {
			lat = append(lat, namedLatency{n, l})
		}
	}
	where := ""
	if r.Scenario != nil {
		where = r.Scenario.where()
	}
	return page.Execute(w, map[string]any{
		"R": r, "Latency": lat, "Metrics": r.metricRows(), "Data": template.JS(data),
		"Where": where, "Phases": r.phaseRows(),
		"JS": template.JS(uplotJS), "CSS": template.CSS(uplotCSS), "License": uplotLicense,
	})
}
