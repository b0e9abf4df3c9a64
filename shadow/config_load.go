package shadow

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/darktime/darktime/internal/inputfile"
	"github.com/darktime/darktime/internal/yamlsafe"
)

// ConfigError is an error in a config file, with its position when known.
// It wraps ErrInvalidConfig.
type ConfigError struct {
	File         string // "" when the config did not come from a file
	Line, Column int    // from 1; 0 when unknown
	Msg          string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("shadow config")
	if e.File != "" {
		b.WriteString(" " + e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d, column %d", e.Line, e.Column)
	}
	return b.String() + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// LoadConfig parses and validates a YAML config. Unknown keys, values of
// the wrong type, bad URLs and bad percentages are *ConfigError values
// that give the line. So are a config over yamlsafe.MaxBytes (1 MiB), YAML
// anchors and aliases, and nesting deeper than yamlsafe.MaxDepth (64):
// refused before the YAML parser sees them (internal/yamlsafe).
func LoadConfig(data []byte) (Config, error) {
	var c Config
	if err := yamlsafe.Check(data, yamlsafe.Limits{}); err != nil {
		ce := &ConfigError{Msg: err.Error()}
		var ye *yamlsafe.Error
		if errors.As(err, &ye) {
			ce.Line, ce.Column, ce.Msg = ye.Line, ye.Column, ye.Msg
		}
		return c, ce
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return c, &ConfigError{Msg: "empty config: at least primary: <URL> is needed"}
	}
	if err := decodeYAML(data, &c); err != nil {
		ce := yamlError(err)
		if strings.Contains(ce.Msg, `unknown field "admin_token"`) {
			ce.Msg += ": the admin token is not kept in the config (GET /_darktime/config would show it): use --admin-token or " + AdminTokenEnv
		}
		if ce.Line == 0 {
			ce.Line, ce.Column = yamlsafe.QuotedPosition(data, ce.Msg)
		}
		return Config{}, ce
	}
	if err := c.Validate(); err != nil {
		ce := &ConfigError{Msg: err.Error()}
		var fe *fieldError
		if errors.As(err, &fe) {
			ce.Line, ce.Column = yamlsafe.PathPosition(data, fe.path)
			if ce.Line == 0 && fe.path == "$.candidate" {
				ce.Line, ce.Column = yamlsafe.PathPosition(data, "$.mode") // what needs the candidate
			}
		}
		return Config{}, ce
	}
	return c, nil
}

// LoadConfigFile reads and parses a config file: a regular file of at
// most yamlsafe.MaxBytes (1 MiB).
func LoadConfigFile(name string) (Config, error) {
	return LoadConfigFileContext(context.Background(), name, false)
}

// LoadConfigFileContext is LoadConfigFile where ctx stops the read, and
// allowSpecial lets it read a FIFO, a pipe or a device (still at most
// 1 MiB).
func LoadConfigFileContext(ctx context.Context, name string, allowSpecial bool) (Config, error) {
	data, err := inputfile.Read(ctx, name, inputfile.Options{
		MaxBytes: yamlsafe.MaxBytes, AllowSpecial: allowSpecial, AllowSpecialHint: "--allow-special-files",
	})
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	c, err := LoadConfig(data)
	var ce *ConfigError
	if errors.As(err, &ce) {
		ce.File = name
	}
	return c, err
}

func yamlError(err error) *ConfigError {
	e := &ConfigError{}
	e.Msg, e.Line, e.Column = yamlsafe.Position(err)
	return e
}

// decodeYAML decodes strictly, and turns a panic of the YAML library (it
// has some on malformed tagged input, found by FuzzLoadConfig) into an
// error.
func decodeYAML(data []byte, c *Config) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("cannot parse the YAML (%v)", r)
		}
	}()
	return yaml.UnmarshalWithOptions(data, c, yaml.DisallowUnknownField())
}
