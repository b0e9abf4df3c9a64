package pipeline

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/darktime/darktime/internal/yamlsafe"
)

// ErrUnknownModel is wrapped by the error Config.Run returns for a hook
// whose model has no pipeline. That error is also a rejection: the job is
// dead-lettered, and replaying it after adding the model works.
var ErrUnknownModel = errors.New("unknown model")

// ErrInvalidConfig is wrapped by every error of LoadConfig.
var ErrInvalidConfig = errors.New("invalid pipeline config")

// Config maps model names to their pipelines.
type Config struct {
	Models map[string]Pipeline
}

// Pipeline returns the pipeline for model.
func (c *Config) Pipeline(model string) (Pipeline, bool) {
	p, ok := c.Models[model]
	return p, ok
}

// ModelNames returns the configured models in order.
func (c *Config) ModelNames() []string { return sortedKeys(c.Models) }

// Run runs h through the pipeline of its model. A model without one is
// rejected with an error wrapping ErrUnknownModel.
func (c *Config) Run(ctx context.Context, h Hook) (Result, error) {
	p, ok := c.Models[h.Model]
	if !ok {
		return Result{}, Reject(fmt.Errorf("%w %q: add it under models: in the pipeline config (known: %s)",
			ErrUnknownModel, h.Model, strings.Join(c.ModelNames(), ", ")))
	}
	return p.Run(ctx, h)
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the YAML of DefaultConfig, a starting point for
// your own.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// DefaultConfig returns the built-in configuration for a Disqus-like
// comment system, with pipelines for the post and thread models (see
// default.yaml). It uses only the built-in stage kinds.
func DefaultConfig() *Config {
	cfg, err := builtinRegistry().LoadConfig(defaultYAML)
	if err != nil {
		panic("pipeline: default.yaml: " + err.Error())
	}
	return cfg
}

// ConfigError is an error in a pipeline config, with its position when
// known. It wraps ErrInvalidConfig.
type ConfigError struct {
	Line, Column int // from 1; 0 when unknown
	Msg          string
}

func (e *ConfigError) Error() string {
	if e.Line == 0 {
		return "pipeline config: " + e.Msg
	}
	return fmt.Sprintf("pipeline config: line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// configError turns err into a *ConfigError, taking the position from a
// YAML error inside err when there is one, else from node.
func configError(err error, node ast.Node) *ConfigError {
	var ce *ConfigError
	if errors.As(err, &ce) {
		return ce
	}
	e := &ConfigError{Msg: err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		e.Msg = ye.GetMessage()
		if outer := err.Error(); !strings.HasPrefix(outer, ye.Error()) {
			// Keep what a build function said around the YAML error.
			e.Msg = strings.Replace(outer, ye.Error(), e.Msg, 1)
		}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
			return e
		}
	}
	if node != nil {
		if tk := node.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	return e
}

// BuildFunc builds a stage from its YAML options: decode fills a struct
// (or any value) from them, strictly, so unknown fields are errors. When
// the stage is written without options ("- mystage:" or "- mystage: {}"),
// decode leaves the value as it is.
type BuildFunc func(decode func(any) error) (Stage, error)

// Registry maps stage kinds, the keys of stage entries in YAML, to the
// functions that build them. It is safe for concurrent use.
type Registry struct {
	mu    sync.RWMutex
	kinds map[string]BuildFunc
}

// NewRegistry returns a registry with the built-in stage kinds: validate,
// enrich, drop, format and route.
func NewRegistry() *Registry {
	r := &Registry{kinds: map[string]BuildFunc{}}
	r.Register("validate", buildWith(NewValidate))
	r.Register("enrich", buildWith(NewEnrich))
	r.Register("drop", buildWith(NewDrop))
	r.Register("format", buildWith(NewFormat))
	r.Register("route", buildWith(NewRoute))
	return r
}

// buildWith adapts a constructor taking a config struct to BuildFunc.
func buildWith[C any](build func(C) (Stage, error)) BuildFunc {
	return func(decode func(any) error) (Stage, error) {
		var cfg C
		if err := decode(&cfg); err != nil {
			return nil, err
		}
		return build(cfg)
	}
}

var (
	builtinOnce sync.Once
	builtins    *Registry
)

func builtinRegistry() *Registry {
	builtinOnce.Do(func() { builtins = NewRegistry() })
	return builtins
}

// DefaultRegistry is the registry Register and LoadConfig use.
var DefaultRegistry = NewRegistry()

// Register adds a stage kind to DefaultRegistry. Call it from an init
// function; it panics if the kind is already registered.
func Register(kind string, build BuildFunc) { DefaultRegistry.Register(kind, build) }

// LoadConfig parses a YAML config with DefaultRegistry.
func LoadConfig(data []byte) (*Config, error) { return DefaultRegistry.LoadConfig(data) }

var kindPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Register adds a stage kind. It panics if kind is already registered, is
// not a lower-case identifier, is the reserved word "only", or build is
// nil, like database/sql.Register: these are programming errors.
func (r *Registry) Register(kind string, build BuildFunc) {
	if !kindPattern.MatchString(kind) || kind == onlyKey {
		panic(fmt.Sprintf("pipeline: Register: bad stage kind %q: use [a-z][a-z0-9_]*, not %q", kind, onlyKey))
	}
	if build == nil {
		panic("pipeline: Register: nil build function for stage kind " + kind)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.kinds[kind]; dup {
		panic("pipeline: Register called twice for stage kind " + kind)
	}
	r.kinds[kind] = build
}

// Kinds returns the registered stage kinds in order.
func (r *Registry) Kinds() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return sortedKeys(r.kinds)
}

func (r *Registry) lookup(kind string) (BuildFunc, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	b, ok := r.kinds[kind]
	return b, ok
}

// onlyKey is the stage entry key that limits a stage to some actions.
const onlyKey = "only"

type configFile struct {
	Models rawMapping `yaml:"models"`
}

// rawMapping keeps a mapping's nodes, so LoadConfig can report positions
// of keys and decode each value itself.
type rawMapping struct {
	node  ast.Node
	pairs []*ast.MappingValueNode
}

func (m *rawMapping) UnmarshalYAML(node ast.Node) error {
	m.node = node
	switch n := unwrap(node).(type) {
	case *ast.MappingNode:
		m.pairs = n.Values
	case *ast.MappingValueNode:
		m.pairs = []*ast.MappingValueNode{n}
	case *ast.NullNode:
	default:
		return configError(fmt.Errorf("expected a mapping, not %s", node.Type()), node)
	}
	return nil
}

type modelSpec struct {
	Stages []rawNode `yaml:"stages"`
}

type rawNode struct{ node ast.Node }

func (r *rawNode) UnmarshalYAML(node ast.Node) error {
	r.node = node
	return nil
}

// unwrap looks through anchors and tags to the node they mark.
func unwrap(node ast.Node) ast.Node {
	for {
		switch n := node.(type) {
		case *ast.AnchorNode:
			node = n.Value
		case *ast.TagNode:
			node = n.Value
		default:
			return node
		}
	}
}

// LoadConfig parses a YAML config. Unknown fields, unknown stage kinds and
// bad stage options are errors of type *ConfigError that give the line; so
// are a config over yamlsafe.MaxBytes (1 MiB), YAML anchors and aliases,
// and nesting deeper than yamlsafe.MaxDepth (64), refused before the YAML
// parser sees them (internal/yamlsafe).
func (r *Registry) LoadConfig(data []byte) (cfg *Config, err error) {
	defer func() {
		// The YAML library panics on some tagged input ("stages: !t",
		// found by FuzzLoadConfig): a parse error, not a crash.
		if p := recover(); p != nil {
			cfg, err = nil, &ConfigError{Msg: fmt.Sprintf("cannot parse the YAML (%v)", p)}
		}
	}()
	if err := yamlsafe.Check(data, yamlsafe.Limits{}); err != nil {
		ce := &ConfigError{Msg: err.Error()}
		var ye *yamlsafe.Error
		if errors.As(err, &ye) {
			ce.Line, ce.Column, ce.Msg = ye.Line, ye.Column, ye.Msg
		}
		return nil, ce
	}
	var file configFile
	if err := yaml.UnmarshalWithOptions(data, &file, yaml.Strict()); err != nil {
		return nil, configError(err, nil)
	}
	if len(file.Models.pairs) == 0 {
		return nil, configError(errors.New("no models: add models: {<model>: {stages: [...]}}"), file.Models.node)
	}
	cfg = &Config{Models: make(map[string]Pipeline, len(file.Models.pairs))}
	for _, kv := range file.Models.pairs {
		name := kv.Key.String()
		if !validName(name, maxModelLen, isModelByte) {
			return nil, configError(fmt.Errorf("model %s: name must match [a-z0-9_]{1,64}", quoteShort(name)), kv.Key)
		}
		if _, dup := cfg.Models[name]; dup {
			return nil, configError(fmt.Errorf("model %q defined twice", name), kv.Key)
		}
		var spec modelSpec
		if kv.Value != nil {
			if err := yaml.NodeToValue(kv.Value, &spec, yaml.Strict()); err != nil {
				return nil, configError(fmt.Errorf("model %q: %w", name, err), kv.Value)
			}
		}
		if len(spec.Stages) == 0 {
			return nil, configError(fmt.Errorf("model %q has no stages: add at least a route stage", name), kv.Key)
		}
		p := make(Pipeline, len(spec.Stages))
		for i, raw := range spec.Stages {
			if raw.node == nil {
				return nil, configError(fmt.Errorf("model %q: stage %d is empty", name, i+1), kv.Key)
			}
			stage, err := r.buildStage(raw.node)
			if err != nil {
				return nil, err
			}
			p[i] = stage
		}
		cfg.Models[name] = p
	}
	return cfg, nil
}

// buildStage builds a stage from a one-key mapping {kind: options}, with
// an optional "only: [actions]" key beside it.
func (r *Registry) buildStage(node ast.Node) (Stage, error) {
	var pairs []*ast.MappingValueNode
	switch n := unwrap(node).(type) {
	case *ast.MappingNode:
		pairs = n.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{n}
	default:
		return nil, configError(fmt.Errorf("a stage must be a mapping like {route: {channels: [...]}}, got %s", strings.ToLower(node.Type().String())), node)
	}
	var (
		kind     string
		kindNode ast.Node
		options  ast.Node
		only     []string
	)
	for _, kv := range pairs {
		key := kv.Key.String()
		if key == onlyKey {
			if err := yaml.NodeToValue(kv.Value, &only, yaml.Strict()); err != nil {
				return nil, configError(fmt.Errorf("only: %w", err), kv.Value)
			}
			if len(only) == 0 {
				return nil, configError(fmt.Errorf("only: list the actions the stage runs for: [%s] or [%s]", ActionSave, ActionDelete), kv.Value)
			}
			for _, a := range only {
				if a != ActionSave && a != ActionDelete {
					return nil, configError(fmt.Errorf("only: %q is not %q or %q", a, ActionSave, ActionDelete), kv.Value)
				}
			}
			continue
		}
		if kind != "" {
			return nil, configError(fmt.Errorf("stage has two kinds, %q and %q: make them two list entries", kind, key), kv.Key)
		}
		kind, kindNode, options = key, kv.Key, kv.Value
	}
	if kind == "" {
		return nil, configError(fmt.Errorf("stage has no kind: use one of %s", strings.Join(r.Kinds(), ", ")), node)
	}
	build, ok := r.lookup(kind)
	if !ok {
		return nil, configError(fmt.Errorf("unknown stage kind %q: use one of %s, or Register it", kind, strings.Join(r.Kinds(), ", ")), kindNode)
	}
	hasOptions := options != nil && unwrap(options).Type() != ast.NullType
	decode := func(v any) error {
		if !hasOptions {
			return nil
		}
		return yaml.NodeToValue(options, v, yaml.Strict())
	}
	stage, err := callBuild(build, decode)
	if err != nil {
		if !strings.HasPrefix(err.Error(), kind+":") {
			err = fmt.Errorf("%s: %w", kind, err)
		}
		at := options
		if !hasOptions {
			at = kindNode
		}
		return nil, configError(err, at)
	}
	if stage == nil {
		return nil, configError(fmt.Errorf("%s: build function returned no stage", kind), kindNode)
	}
	if len(only) > 0 {
		stage = ForActions(stage, only...)
	}
	return stage, nil
}

// callBuild runs a user's build function, turning a panic into an error.
func callBuild(build BuildFunc, decode func(any) error) (stage Stage, err error) {
	defer func() {
		if r := recover(); r != nil {
			stage, err = nil, fmt.Errorf("build function panicked: %v", r)
		}
	}()
	return build(decode)
}
