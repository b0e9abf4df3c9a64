package capacity

import (
	"context"
	"io"

	"github.com/darktime/darktime/report"
)

// Request is one darktime report capacity --forecast call: fit the runs
// (or read a saved model), size the forecast, write what was asked.
type Request struct {
	// Runs are run folders (or their swarm.json); Model a saved model
	// used instead.
	Runs  []string
	Model string
	// Forecast is the forecast file; empty with ModelOut only (fit and
	// save the model).
	Forecast string
	Load     LoadOptions
	// ModelOut and JSON, when set, receive the model and the plan.
	ModelOut, JSON string
	// Text receives the plan (or the model) for people.
	Text io.Writer
}

// Fitted reads the runs and fits them, or reads the saved model.
func (rq Request) Fitted(ctx context.Context) (*Model, error) {
	if rq.Model != "" {
		if len(rq.Runs) > 0 {
			return nil, badInput("give ramp runs or --model, not both")
		}
		return ReadModel(ctx, rq.Load.Files, rq.Model)
	}
	var runs []*Run
	for _, path := range rq.Runs {
		r, err := LoadRun(ctx, path, rq.Load)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return Fit(runs, rq.Load)
}

// ReadForecast reads a forecast file within the report's bounds.
func ReadForecast(ctx context.Context, fs report.Files, path string) (*Forecast, error) {
	data, err := fs.Read(ctx, path)
	if err != nil {
		return nil, err
	}
	return ParseForecast(path, data)
}

// Do fits (or reads) the model, writes it to ModelOut, and with a
// forecast makes the plan, prints it and writes its JSON. It returns the
// model and the plan (nil without a forecast).
func (rq Request) Do(ctx context.Context) (*Model, *Plan, error) {
	var f *Forecast
	if rq.Forecast != "" {
		var err error
		if f, err = ReadForecast(ctx, rq.Load.Files, rq.Forecast); err != nil {
			return nil, nil, err
		}
	}
	m, err := rq.Fitted(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := report.WriteFile(rq.ModelOut, m.WriteJSON); err != nil {
		return nil, nil, err
	}
	text := rq.Text
	if text == nil {
		text = io.Discard
	}
	if f == nil {
		return m, nil, m.WriteText(text)
	}
	p, err := MakePlan(m, f)
	if err != nil {
		return nil, nil, err
	}
	if err := report.WriteFile(rq.JSON, p.WriteJSON); err != nil {
		return nil, nil, err
	}
	return m, p, p.WriteText(text)
}
