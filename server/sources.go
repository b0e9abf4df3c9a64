package server

import (
	"errors"
	"fmt"
	"os"

	"github.com/darktime/darktime/server/auth"
	"github.com/darktime/darktime/server/pipeline"
)

// Sources are what a Config takes from outside the command line's
// values: files and the environment. Apply reads them into a Config.
type Sources struct {
	// PipelinesFile is the hooks' pipeline config (default: the built-in
	// post and thread models); AuthFile the channel rules and JWT key
	// (default: every channel open).
	PipelinesFile, AuthFile string
	// TrustedProxies are --trusted-proxy values (ParseTrustedProxies).
	TrustedProxies []string
	// Read reads a file within the caller's bounds (the TLS pair is
	// checked with it too, before the TLS library reads it whole).
	Read func(path string) ([]byte, error)
	// Getenv fills the tokens the flags left empty from
	// DARKTIME_PUBLISH_TOKEN and DARKTIME_ADMIN_TOKEN (os.Getenv): read at
	// start, never flag defaults, so --help cannot print them.
	Getenv func(string) string
}

// Apply completes cfg from s and checks l's TLS files. Every error of the
// user's input wraps ErrConfig and names the flag.
func (s Sources) Apply(cfg *Config, l Listen) error {
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if cfg.PublishToken == "" {
		cfg.PublishToken = getenv("DARKTIME_PUBLISH_TOKEN")
	}
	if cfg.AdminToken == "" {
		cfg.AdminToken = getenv("DARKTIME_ADMIN_TOKEN")
	}
	var err error
	if cfg.TrustedProxies, err = ParseTrustedProxies(s.TrustedProxies); err != nil {
		return runErrorf("--trusted-proxy: %v", err)
	}
	for _, f := range []struct{ flag, path string }{{"--tls-cert", l.TLSCert}, {"--tls-key", l.TLSKey}} {
		if f.path != "" {
			if _, err := s.Read(f.path); err != nil {
				return runErrorf("%s: %v", f.flag, err)
			}
		}
	}
	if cfg.Pipelines, err = pipeline.LoadFile(s.PipelinesFile, s.Read); err != nil {
		return flagError("--pipelines", err, pipeline.ErrInvalidConfig)
	}
	if cfg.Authorizer, err = LoadAuth(s.AuthFile, s.Read); err != nil {
		return flagError("--auth", err, auth.ErrInvalidConfig)
	}
	return nil
}

// LoadAuth reads an auth file (examples/server-auth.yaml) with read; no
// file leaves subscribing open (a nil Authorizer, not a nil
// *auth.Authorizer in the interface).
func LoadAuth(path string, read func(path string) ([]byte, error)) (Authorizer, error) {
	if path == "" {
		return nil, nil
	}
	data, err := read(path)
	if err != nil {
		return nil, authReadError{err}
	}
	a, err := auth.LoadNamed(path, data, auth.LoadOptions{})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// flagError names the flag; bad input (kind) becomes a Config error.
func flagError(flag string, err, kind error) error {
	if errors.Is(err, kind) {
		return runErrorf("%s: %v", flag, err)
	}
	return fmt.Errorf("%s: %w", flag, err)
}

// authReadError is an auth file that could not be read: bad input.
type authReadError struct{ err error }

func (e authReadError) Error() string   { return e.err.Error() }
func (e authReadError) Unwrap() []error { return []error{auth.ErrInvalidConfig, e.err} }
