package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
)

// ErrReject is wrapped by errors that retrying cannot fix. The worker
// dead-letters such a job instead of retrying it.
var ErrReject = errors.New("rejected")

// errPanic is wrapped by the error Run returns when a stage panics.
var errPanic = errors.New("stage panicked")

// Item is what flows through the stages of a pipeline.
type Item struct {
	Hook Hook
	// Doc is the working document: a shallow copy of Hook.Fields plus
	// "id". Stages may add, change and delete its keys, but must not change
	// nested values in place, because they are shared with Hook.Fields.
	Doc      map[string]any
	Event    string            // SSE event name; starts as <model>.<saved|deleted>
	Channels []string          // where to publish; set by route stages
	Data     []byte            // the event data; set by format stages
	Meta     map[string]string // free-form notes from stage to stage, returned in Result
}

// NewItem starts an item for h.
func NewItem(h Hook) *Item {
	doc := maps.Clone(h.Fields)
	if doc == nil {
		doc = make(map[string]any, 1)
	}
	doc["id"] = h.ID
	return &Item{
		Hook:  h,
		Doc:   doc,
		Event: h.Model + "." + h.Verb(),
		Meta:  map[string]string{},
	}
}

// Stage is one step of a pipeline. Process changes it and returns nil to
// pass it on, Drop(reason) to stop without publishing, an error wrapping
// ErrReject to fail for good, or any other error to have the job retried.
// A stage is shared by every worker, so Process must be safe for
// concurrent use.
type Stage interface {
	Process(ctx context.Context, it *Item) error
}

// StageFunc adapts a function to Stage.
type StageFunc func(ctx context.Context, it *Item) error

// Process calls f.
func (f StageFunc) Process(ctx context.Context, it *Item) error { return f(ctx, it) }

// Pipeline is an ordered list of stages. It is itself a Stage, so
// pipelines nest.
type Pipeline []Stage

var _ Stage = Pipeline(nil)

// Event is one message to publish.
type Event struct {
	Channel string
	Event   string // SSE event name
	Data    []byte // shared by every event of a Result: do not modify
}

// Result is what a pipeline made of a hook.
type Result struct {
	Events     []Event // one per channel, in routing order
	Dropped    bool    // true when a stage dropped the hook; Events is then empty
	DropReason string
	Meta       map[string]string // Item.Meta after the last stage
}

// Process runs the stages in order and stops at the first error.
func (p Pipeline) Process(ctx context.Context, it *Item) error {
	for i, s := range p {
		if err := s.Process(ctx, it); err != nil {
			if _, ok := IsDrop(err); ok {
				return err
			}
			return fmt.Errorf("stage %d: %w", i+1, err)
		}
	}
	return nil
}

// Run takes h through the pipeline. It returns the events to publish, or
// a Result with Dropped set, or the error of the stage that failed (see
// IsReject). If no stage sets Item.Data, the data is the whole document as
// a JSON object; if no stage routes the item, it is dropped as "no route".
// A panicking stage is turned into a rejection, so a bad hook cannot crash
// a worker again at every delivery.
func (p Pipeline) Run(ctx context.Context, h Hook) (res Result, err error) {
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	it := NewItem(h)
	defer func() {
		if r := recover(); r != nil {
			res = Result{}
			err = Reject(fmt.Errorf("%w: %v\n%s", errPanic, r, debug.Stack()))
		}
	}()
	if err := p.Process(ctx, it); err != nil {
		if reason, ok := IsDrop(err); ok {
			return Result{Dropped: true, DropReason: reason, Meta: it.Meta}, nil
		}
		return Result{Meta: it.Meta}, err
	}
	if len(it.Channels) == 0 {
		return Result{Dropped: true, DropReason: "no route", Meta: it.Meta}, nil
	}
	if it.Data == nil {
		if it.Data, err = appendObject(nil, it.Doc, nil); err != nil {
			return Result{Meta: it.Meta}, Reject(err)
		}
	}
	if !validName(it.Event, maxChannelLen, isNameByte) {
		return Result{Meta: it.Meta}, Reject(fmt.Errorf("event name %s must match [A-Za-z0-9_:.-]{1,128}", quoteShort(it.Event)))
	}
	res.Events = make([]Event, len(it.Channels))
	for i, ch := range it.Channels {
		res.Events[i] = Event{Channel: ch, Event: it.Event, Data: it.Data}
	}
	res.Meta = it.Meta
	return res, nil
}

type dropError struct{ reason string }

func (e *dropError) Error() string { return "dropped: " + e.reason }

// Drop returns the error a stage returns to stop the pipeline without
// publishing anything. The job is done: the worker acks it.
func Drop(reason string) error { return &dropError{reason: reason} }

// IsDrop reports whether err (or an error it wraps) came from Drop, and
// why.
func IsDrop(err error) (reason string, ok bool) {
	var d *dropError
	if errors.As(err, &d) {
		return d.reason, true
	}
	return "", false
}

type rejectError struct{ err error }

func (e *rejectError) Error() string        { return e.err.Error() }
func (e *rejectError) Unwrap() error        { return e.err }
func (e *rejectError) Is(target error) bool { return target == ErrReject }

// Reject marks err as permanent: the job will never succeed, so the worker
// dead-letters it. Reject(nil) is nil.
func Reject(err error) error {
	if err == nil {
		return nil
	}
	return &rejectError{err: err}
}

// Rejectf is Reject(fmt.Errorf(format, args...)).
func Rejectf(format string, args ...any) error {
	return Reject(fmt.Errorf(format, args...))
}

// IsReject reports whether err is permanent. Errors that are neither nil,
// drops nor rejections are transient.
func IsReject(err error) bool { return errors.Is(err, ErrReject) }

// ForActions runs s only for hooks whose action is one of actions, and
// passes other items on untouched. In YAML it is the "only" key of a stage.
func ForActions(s Stage, actions ...string) Stage {
	return &forActions{stage: s, actions: append([]string(nil), actions...)}
}

type forActions struct {
	stage   Stage
	actions []string
}

func (f *forActions) Process(ctx context.Context, it *Item) error {
	for _, a := range f.actions {
		if a == it.Hook.Action {
			return f.stage.Process(ctx, it)
		}
	}
	return nil
}
