package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// SignerConfig configures a Signer: the tokens a test (the swarm, `darktime
// token`) mints for its clients.
type SignerConfig struct {
	// Secret (HMAC) or PrivateKey (*rsa.PrivateKey, *ecdsa.PrivateKey,
	// ed25519.PrivateKey): exactly one.
	Secret     []byte
	PrivateKey any
	// Algorithm defaults to HS256, RS256, the ECDSA curve's ES* or EdDSA.
	Algorithm string
	// TTL is each token's lifetime (default 1h).
	TTL      time.Duration
	Issuer   string
	Audience string
	// Extra claims go into every token; they cannot replace sub, exp, iat
	// or channels.
	Extra map[string]any
	// Now is the clock (time.Now).
	Now func() time.Time
}

// DefaultTTL is a minted token's lifetime when none is given.
const DefaultTTL = time.Hour

// Signer mints tokens.
type Signer struct {
	cfg    SignerConfig
	method jwt.SigningMethod
	key    any
}

var reservedClaims = []string{"sub", "exp", "iat", "channels", "iss", "aud"}

// NewSigner checks the key and algorithm.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	var family []string
	var key any
	switch {
	case cfg.Secret != nil && cfg.PrivateKey != nil:
		return nil, errors.New("jwt: both a secret and a private key; give one")
	case cfg.Secret != nil:
		if len(cfg.Secret) == 0 {
			return nil, errors.New("jwt: empty secret")
		}
		key, family = cfg.Secret, hmacAlgs
	case cfg.PrivateKey != nil:
		switch k := cfg.PrivateKey.(type) {
		case *rsa.PrivateKey:
			key, family = k, rsaAlgs
		case *ecdsa.PrivateKey:
			key, family = k, ecdsaAlgs(k.Curve)
			if family == nil {
				return nil, errors.New("jwt: the ECDSA key's curve is not P-256, P-384 or P-521")
			}
		case ed25519.PrivateKey:
			key, family = k, ed25519Algs
		default:
			return nil, fmt.Errorf("jwt: unsupported private key type %T", cfg.PrivateKey)
		}
	default:
		return nil, errors.New("jwt: no key: give a secret (HMAC) or a private key")
	}
	if cfg.Algorithm == "" {
		cfg.Algorithm = family[0]
	}
	if !slices.Contains(family, cfg.Algorithm) {
		return nil, fmt.Errorf("jwt: algorithm %q does not go with this key (it signs %v)", cfg.Algorithm, family)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	for k := range cfg.Extra {
		if slices.Contains(reservedClaims, k) {
			return nil, fmt.Errorf("jwt: extra claim %q is set by the signer", k)
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Signer{cfg: cfg, method: jwt.GetSigningMethod(cfg.Algorithm), key: key}, nil
}

// Algorithm returns the signing algorithm.
func (s *Signer) Algorithm() string { return s.cfg.Algorithm }

// TTL returns each token's lifetime.
func (s *Signer) TTL() time.Duration { return s.cfg.TTL }

// Mint signs a token for sub that may read channels (patterns allowed),
// valid for the configured TTL from now.
func (s *Signer) Mint(sub string, channels []string) (string, error) {
	now := s.cfg.Now()
	c := jwt.MapClaims{}
	for k, v := range s.cfg.Extra {
		c[k] = v
	}
	c["sub"] = sub
	c["iat"] = now.Unix()
	// exp is whole seconds (NumericDate); round up so a token never lives
	// shorter than its TTL.
	c["exp"] = now.Add(s.cfg.TTL + time.Second - 1).Unix()
	if len(channels) > 0 {
		c["channels"] = channels
	}
	if s.cfg.Issuer != "" {
		c["iss"] = s.cfg.Issuer
	}
	if s.cfg.Audience != "" {
		c["aud"] = s.cfg.Audience
	}
	return jwt.NewWithClaims(s.method, c).SignedString(s.key)
}

// ParsePrivateKeyPEM reads an RSA, ECDSA or Ed25519 private key (PKCS#8
// "PRIVATE KEY", "RSA PRIVATE KEY" or "EC PRIVATE KEY").
func ParsePrivateKeyPEM(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block: want a -----BEGIN PRIVATE KEY----- file")
	}
	switch block.Type {
	case "PRIVATE KEY":
		return x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		return x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q: want a private key", block.Type)
	}
}

// LoadSignerKey reads a signer's key from an environment variable (an
// HMAC secret) or a file (a PEM private key, or else an HMAC secret,
// trailing newline ignored): exactly one of secretEnv and keyFile.
func LoadSignerKey(secretEnv, keyFile string, getenv func(string) string) (secret []byte, private any, err error) {
	switch {
	case secretEnv != "" && keyFile != "":
		return nil, nil, errors.New("give one of a secret environment variable and a key file")
	case secretEnv != "":
		if getenv == nil {
			getenv = os.Getenv
		}
		s := getenv(secretEnv)
		if s == "" {
			return nil, nil, fmt.Errorf("the environment variable %s is empty or unset", secretEnv)
		}
		return []byte(s), nil, nil
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, nil, err
		}
		if block, _ := pem.Decode(b); block != nil {
			k, err := ParsePrivateKeyPEM(b)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", keyFile, err)
			}
			return nil, k, nil
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil, nil
	default:
		return nil, nil, errors.New("no key: give a secret environment variable or a key file")
	}
}
