package auth

import (
	"errors"
	"fmt"
	"strings"
)

// ErrTokenRequest wraps the errors of a TokenRequest the user fixes.
var ErrTokenRequest = errors.New("auth: bad token request")

// requestError wraps ErrTokenRequest and says only what is wrong.
type requestError struct{ err error }

func (e requestError) Error() string   { return e.err.Error() }
func (e requestError) Unwrap() []error { return []error{ErrTokenRequest, e.err} }

func requestErrorf(format string, args ...any) error {
	return requestError{fmt.Errorf(format, args...)}
}

// TokenRequest is a token as `darktime token` asks for one: the key by
// environment variable or file, the signer's settings, the subject, the
// channels (patterns allowed) and extra NAME=VALUE claims.
type TokenRequest struct {
	SecretEnv, KeyFile string
	Signer             SignerConfig
	Sub                string
	Channels           []string
	Claims             []string
}

// Mint checks r and mints its token. Every error but the signing's wraps
// ErrTokenRequest, naming the flag at fault.
func (r TokenRequest) Mint() (string, error) {
	if r.Sub == "" {
		return "", requestErrorf("--sub is needed: the user the token is for")
	}
	cfg := r.Signer
	var err error
	if cfg.Secret, cfg.PrivateKey, err = LoadSignerKey(r.SecretEnv, r.KeyFile, nil); err != nil {
		return "", requestErrorf("key: %v", err)
	}
	for _, kv := range r.Claims {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return "", requestErrorf("--claim %q: want NAME=VALUE", kv)
		}
		if cfg.Extra == nil {
			cfg.Extra = map[string]any{}
		}
		cfg.Extra[k] = v
	}
	for _, c := range r.Channels {
		if _, err := ParsePattern(c); err != nil {
			return "", requestErrorf("--channels: %v", err)
		}
	}
	signer, err := NewSigner(cfg)
	if err != nil {
		return "", requestError{err}
	}
	return signer.Mint(r.Sub, r.Channels)
}
