package auth

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/darktime/darktime/internal/yamlsafe"
)

// MaxConfigBytes bounds an auth config file.
const MaxConfigBytes = 1 << 20

// ErrInvalidConfig is wrapped by every *ConfigError.
var ErrInvalidConfig = errors.New("invalid auth config")

// ConfigError is an error in an auth config, with its position when known.
type ConfigError struct {
	File         string
	Line, Column int // from 1; 0 when unknown
	Msg          string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	} else {
		b.WriteString("auth config")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	return b.String() + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// FileConfig is the YAML document of `darktime server --auth FILE`.
// Secrets stay out of it: the HMAC secret comes from an environment
// variable or a file, the public key from a PEM file.
type FileConfig struct {
	Channels []RuleConfig `yaml:"channels"`
	JWT      JWTConfig    `yaml:"jwt"`
}

// RuleConfig is one channel rule as written.
type RuleConfig struct {
	Match  string `yaml:"match"`
	Access string `yaml:"access"`
}

// JWTConfig says how tokens are verified.
type JWTConfig struct {
	SecretEnv  string        `yaml:"secret_env"`  // HMAC secret in this environment variable
	SecretFile string        `yaml:"secret_file"` // or in this file (trailing newline ignored)
	KeyFile    string        `yaml:"key_file"`    // or a PEM public key (RS*, PS*, ES*, EdDSA)
	Algorithms []string      `yaml:"algorithms"`  // default: all of the key's family
	Issuer     string        `yaml:"issuer"`
	Audience   string        `yaml:"audience"`
	Leeway     time.Duration `yaml:"leeway"` // default 0, at most 5m
}

// LoadOptions are what a config may read from its surroundings.
type LoadOptions struct {
	// Getenv reads secret_env (os.Getenv).
	Getenv func(string) string
	// Dir resolves relative key_file and secret_file paths (the config
	// file's directory in LoadFile).
	Dir string
	// Now is the verifier's clock (time.Now).
	Now func() time.Time
}

// LoadFile reads an auth config file and builds its Authorizer.
func LoadFile(name string, opts LoadOptions) (*Authorizer, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, name, err)
	}
	return LoadNamed(name, data, opts)
}

// LoadNamed is Load of a config read from the file name (already read,
// as the CLI reads its files: bounded and interruptible): errors name the
// file, and relative key files are found beside it.
func LoadNamed(name string, data []byte, opts LoadOptions) (*Authorizer, error) {
	if opts.Dir == "" {
		opts.Dir = filepath.Dir(name)
	}
	a, err := Load(data, opts)
	var ce *ConfigError
	if errors.As(err, &ce) {
		ce.File = name
	}
	return a, err
}

// Load parses a config strictly (unknown keys, aliases and files over 1
// MiB are errors with their line and column) and builds its Authorizer.
func Load(data []byte, opts LoadOptions) (*Authorizer, error) {
	// Size, anchors and aliases, nesting: as every YAML darktime reads.
	if err := yamlsafe.Check(data, yamlsafe.Limits{MaxBytes: MaxConfigBytes}); err != nil {
		e := &ConfigError{Msg: err.Error()}
		var ye *yamlsafe.Error
		if errors.As(err, &ye) {
			e.Line, e.Column, e.Msg = ye.Line, ye.Column, ye.Msg
		}
		return nil, e
	}
	var fc FileConfig
	if err := decodeStrict(data, &fc); err != nil {
		return nil, err
	}
	at := func(path string, format string, args ...any) error {
		line, col := yamlsafe.PathPosition(data, path)
		return &ConfigError{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)}
	}
	if len(fc.Channels) == 0 {
		return nil, at("$", "no channel rules: list at least one under channels: (match: PATTERN, access: public|private)")
	}
	a := &Authorizer{}
	anyPrivate := false
	for i, rc := range fc.Channels {
		r, err := ParseRule(rc.Match, rc.Access)
		if err != nil {
			field := "match"
			if !errors.Is(err, ErrBadPattern) {
				field = "access"
			}
			return nil, at(fmt.Sprintf("$.channels[%d].%s", i, field), "channels[%d]: %v", i, err)
		}
		anyPrivate = anyPrivate || r.Access == Private
		a.Rules = append(a.Rules, r)
	}
	last := a.Rules[len(a.Rules)-1]
	if last.Pattern.String() != "*" {
		anyPrivate = true // what no rule matches is private
	}
	v, err := fc.JWT.verifier(opts)
	if err != nil {
		path := "$.jwt"
		var ke *keyError
		if errors.As(err, &ke) {
			path += "." + ke.key
		}
		return nil, at(path, "jwt: %v", err)
	}
	if v == nil && anyPrivate {
		return nil, at("$.jwt", "private channels need a key: set jwt.secret_env, jwt.secret_file or jwt.key_file")
	}
	a.Verifier = v
	return a, nil
}

// keyError is an error about one key of the jwt section.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.key + ": " + e.err.Error() }
func (e *keyError) Unwrap() error { return e.err }

func (j JWTConfig) verifier(opts LoadOptions) (*Verifier, error) {
	set := 0
	for _, s := range []string{j.SecretEnv, j.SecretFile, j.KeyFile} {
		if s != "" {
			set++
		}
	}
	if set == 0 {
		return nil, nil
	}
	if set > 1 {
		return nil, errors.New("give one of secret_env, secret_file and key_file")
	}
	if j.Leeway < 0 || j.Leeway > 5*time.Minute {
		return nil, &keyError{"leeway", fmt.Errorf("%v: want 0 to 5m (it tolerates clock skew, nothing more)", j.Leeway)}
	}
	vc := VerifierConfig{Algorithms: j.Algorithms, Issuer: j.Issuer, Audience: j.Audience, Leeway: j.Leeway, Now: opts.Now}
	resolve := func(p string) string {
		if filepath.IsAbs(p) || opts.Dir == "" {
			return p
		}
		return filepath.Join(opts.Dir, p)
	}
	switch {
	case j.SecretEnv != "":
		getenv := opts.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		s := getenv(j.SecretEnv)
		if s == "" {
			return nil, &keyError{"secret_env", fmt.Errorf("the environment variable %s is empty or unset", j.SecretEnv)}
		}
		vc.Secret = []byte(s)
	case j.SecretFile != "":
		b, err := os.ReadFile(resolve(j.SecretFile))
		if err != nil {
			return nil, &keyError{"secret_file", err}
		}
		vc.Secret = []byte(strings.TrimRight(string(b), "\r\n"))
	default:
		b, err := os.ReadFile(resolve(j.KeyFile))
		if err != nil {
			return nil, &keyError{"key_file", err}
		}
		k, err := ParsePublicKeyPEM(b)
		if err != nil {
			return nil, &keyError{"key_file", fmt.Errorf("%s: %w", j.KeyFile, err)}
		}
		vc.PublicKey = k
	}
	v, err := NewVerifier(vc)
	if err != nil && len(j.Algorithms) > 0 && strings.Contains(err.Error(), "algorithm") {
		return nil, &keyError{"algorithms", err}
	}
	return v, err
}

// decodeStrict decodes with unknown keys refused, and turns a panic of the
// YAML library on malformed input into an error.
func decodeStrict(data []byte, fc *FileConfig) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &ConfigError{Msg: fmt.Sprintf("cannot parse the YAML (%v)", r)}
		}
	}()
	if err := yaml.UnmarshalWithOptions(data, fc, yaml.DisallowUnknownField()); err != nil {
		e := &ConfigError{}
		e.Msg, e.Line, e.Column = yamlsafe.Position(err)
		return e
	}
	return nil
}
