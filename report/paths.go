package report

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/darktime/darktime/shadow/ledgerfile"
	"github.com/darktime/darktime/swarm/resultfile"
)

// The defaults of CompareOptions and CapacityOptions (their zero values
// mean them), which the flags of `darktime report` show.
const (
	DefaultNoiseK      = 3
	DefaultMinRelative = 0.05
	DefaultBreach      = 3
	DefaultNodes       = 1
	DefaultHotShare    = 1
	DefaultHeadroom    = 0.7
)

// Paths names the files a report is built from (`darktime report`).
type Paths struct {
	Results                 []string
	StatsBefore, StatsAfter []string
	Shadow                  []string
	// MergeShadow says the Shadow files are the ledgers of the instances
	// of one proxy fleet (the same users' buckets, the same targets): they
	// are reported as one ledger, their exact sum (ledgerfile.Merge).
	MergeShadow bool
}

// Inputs reads every file of p within fs's bounds; the paths name the
// results and ledgers in messages. Every error wraps ErrInput.
func (fs Files) Inputs(ctx context.Context, p Paths) (Inputs, error) {
	var in Inputs
	for _, path := range p.Results {
		r, err := fs.Result(ctx, path)
		if err != nil {
			return in, err
		}
		in.Results = append(in.Results, r)
		in.ResultNames = append(in.ResultNames, path)
	}
	for _, path := range p.StatsBefore {
		st, err := fs.Stats(ctx, path)
		if err != nil {
			return in, err
		}
		in.StatsBefore = append(in.StatsBefore, st)
	}
	for _, path := range p.StatsAfter {
		st, err := fs.Stats(ctx, path)
		if err != nil {
			return in, err
		}
		in.StatsAfter = append(in.StatsAfter, st)
	}
	for _, path := range p.Shadow {
		l, err := fs.Shadow(ctx, path)
		if err != nil {
			return in, err
		}
		in.Shadow = append(in.Shadow, l)
		in.ShadowNames = append(in.ShadowNames, path)
	}
	if p.MergeShadow && len(in.Shadow) > 1 {
		m, err := ledgerfile.Merge(in.Shadow...)
		if err != nil {
			return in, fmt.Errorf("%w: --merge-shadow %s: %w", ErrInput, strings.Join(in.ShadowNames, ", "), err)
		}
		in.Shadow = []ledgerfile.Report{m}
		in.ShadowNames = []string{fmt.Sprintf("shadow fleet (%d instances)", len(in.ShadowNames))}
	}
	return in, nil
}

// Runs reads result files and builds one report per run (by run id, in
// the order the runs first appear), merging the parts of each: the sides
// of Compare.
func (fs Files) Runs(ctx context.Context, paths []string) ([]*Report, error) {
	byRun := map[string][]*resultfile.Result{}
	var order []string
	for _, p := range paths {
		r, err := fs.Result(ctx, p)
		if err != nil {
			return nil, err
		}
		if _, ok := byRun[r.RunID]; !ok {
			order = append(order, r.RunID)
		}
		byRun[r.RunID] = append(byRun[r.RunID], r)
	}
	var out []*Report
	for _, id := range order {
		r, err := Build(Inputs{Results: byRun[id]})
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// WriteFile writes one output with write; an empty path writes nothing.
func WriteFile(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// AppendFile appends one output to the file at path (created when
// missing), as $GITHUB_STEP_SUMMARY wants; an empty path writes nothing.
// A section starts on a line of its own.
func AppendFile(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		if _, err := io.WriteString(f, "\n"); err != nil {
			f.Close()
			return err
		}
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Request is one `darktime report`: the files to read, the gates (as
// expressions and from a gate file), the files to write and where the
// terminal summary goes.
type Request struct {
	Paths Paths
	// Gates are 'METRIC OP NUMBER' expressions; GatesFile, when set, is a
	// YAML or JSON file of more.
	Gates     []string
	GatesFile string
	// JSON, JUnit and HTML are the outputs to write ("" writes none).
	JSON, JUnit, HTML string
	// Markdown, when set, is where the Markdown summary goes
	// (WriteMarkdown); AppendMarkdown are files it is appended to
	// ($GITHUB_STEP_SUMMARY).
	Markdown       string
	AppendMarkdown []string
	// Text, when set, receives the terminal summary.
	Text io.Writer
	// Done, when set, is called with the report and its gates' results
	// once every output is written, before the verdict (`darktime report
	// --history` appends the run to its history); its error is Run's.
	Done func(r *Report, gates []GateResult) error
}

// Run reads rq's inputs within fs's bounds, builds the report, evaluates
// the gates and writes every output. The error wraps ErrInput for input
// it cannot use (files, gates); a failed gate is Failures' error.
func (fs Files) Run(ctx context.Context, rq Request) error {
	in, err := fs.Inputs(ctx, rq.Paths)
	if err != nil {
		return err
	}
	gates, err := ParseGates(rq.Gates)
	if err == nil && rq.GatesFile != "" {
		var more []Gate
		more, err = fs.Gates(ctx, rq.GatesFile)
		gates = append(gates, more...)
	}
	if err != nil {
		return err
	}
	r, err := Build(in)
	if err != nil {
		return err
	}
	results, err := r.Evaluate(gates)
	if err != nil {
		return err
	}
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{{rq.JSON, r.WriteJSON}, {rq.JUnit, r.WriteJUnit}, {rq.HTML, r.WriteHTML}} {
		if err := WriteFile(out.path, out.write); err != nil {
			return err
		}
	}
	md := func(w io.Writer) error { return r.WriteMarkdown(w, MarkdownOptions{HTML: rq.HTML}) }
	if err := WriteFile(rq.Markdown, md); err != nil {
		return err
	}
	for _, path := range rq.AppendMarkdown {
		if err := AppendFile(path, md); err != nil {
			return err
		}
	}
	if rq.Text != nil {
		if err := r.WriteText(rq.Text); err != nil {
			return err
		}
	}
	if rq.Done != nil {
		if err := rq.Done(r, results); err != nil {
			return err
		}
	}
	return Failures(results)
}

// Compare reads the base and candidate result files, groups each side by
// run (Runs), compares them, writes the comparison as JSON to jsonOut
// (when set) and as text to w. The error wraps ErrInput for input it
// cannot use; a regression is Comparison.Err's.
func (fs Files) Compare(ctx context.Context, base, cand []string, opts CompareOptions, jsonOut string, w io.Writer) error {
	baseRuns, err := fs.Runs(ctx, base)
	if err != nil {
		return err
	}
	candRuns, err := fs.Runs(ctx, cand)
	if err != nil {
		return err
	}
	cmp, err := Compare(baseRuns, candRuns, opts)
	if err != nil {
		return err
	}
	return cmp.Write(jsonOut, w)
}

// Write writes the comparison as JSON to jsonOut (when set) and as text
// to w, and returns its verdict (Err).
func (c *Comparison) Write(jsonOut string, w io.Writer) error {
	if err := WriteFile(jsonOut, c.WriteJSON); err != nil {
		return err
	}
	if err := c.WriteText(w); err != nil {
		return err
	}
	return c.Err()
}

// Capacity reads the result files of one ramp run, plans with opts and
// writes the plan as JSON to jsonOut (when set) and as text to w.
func (fs Files) Capacity(ctx context.Context, results []string, opts CapacityOptions, jsonOut string, w io.Writer) error {
	in, err := fs.Inputs(ctx, Paths{Results: results})
	if err != nil {
		return err
	}
	r, err := Build(in)
	if err != nil {
		return err
	}
	c, err := Plan(r, opts)
	if err != nil {
		return err
	}
	if err := WriteFile(jsonOut, c.WriteJSON); err != nil {
		return err
	}
	return c.WriteText(w)
}
