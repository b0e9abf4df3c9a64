package live

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Flags are the command line's remote-write settings (darktime swarm,
// swarm agent and run: --remote-write, --remote-write-interval,
// --remote-write-header).
type Flags struct {
	URL      string
	Interval time.Duration
	Headers  []string
}

// Config is the exporter configuration the flags describe, checked; nil
// without --remote-write.
func (f Flags) Config(log *slog.Logger) (*Config, error) {
	if f.URL == "" {
		return nil, nil
	}
	c := &Config{URL: f.URL, Interval: f.Interval, Headers: http.Header{}, Logger: log}
	for _, h := range f.Headers {
		if err := ParseHeader(c.Headers, h); err != nil {
			return nil, err
		}
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return c, nil
}

// Spec is c as a worker of a split run gets it (swarm.Procs.Live).
func (c Config) Spec() (json.RawMessage, error) { return json.Marshal(c) }

// FromSpec reads what Spec wrote (unknown fields refused) and checks it;
// log is the worker's.
func FromSpec(raw json.RawMessage, log *slog.Logger) (*Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: the run spec's live export: %v", ErrConfig, err)
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	c.Logger = log
	return &c, nil
}
