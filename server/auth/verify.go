package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are what darktime reads from a token: the registered claims (exp
// is required; sub names the user) and the channels it may read.
type Claims struct {
	jwt.RegisteredClaims
	// Channels lists channels or patterns (`*`, `{sub}`) the token may
	// read.
	Channels []string `json:"channels,omitempty"`
}

// maxTokenBytes bounds a token before it is parsed.
const maxTokenBytes = 8 << 10

// Algorithm families, by the key that verifies them.
var (
	hmacAlgs    = []string{"HS256", "HS384", "HS512"}
	rsaAlgs     = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	ed25519Algs = []string{"EdDSA"}
)

func ecdsaAlgs(curve elliptic.Curve) []string {
	switch curve {
	case elliptic.P256():
		return []string{"ES256"}
	case elliptic.P384():
		return []string{"ES384"}
	case elliptic.P521():
		return []string{"ES512"}
	}
	return nil
}

// VerifierConfig configures a Verifier. Exactly one of Secret (HMAC) and
// PublicKey (*rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey) is set.
type VerifierConfig struct {
	Secret    []byte
	PublicKey any
	// Algorithms narrows the accepted algorithms; by default every one of
	// the key's family. An algorithm outside the key's family is an error.
	Algorithms []string
	// Issuer and Audience, when set, must match iss and aud.
	Issuer   string
	Audience string
	// Leeway tolerates clock skew on exp and nbf (default 0; keep it to
	// seconds).
	Leeway time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Verifier checks tokens.
type Verifier struct {
	key    any
	algs   []string
	leeway time.Duration
	parser *jwt.Parser
}

// NewVerifier builds a verifier whose algorithms are pinned to its key.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	var key any
	var family []string
	switch {
	case cfg.Secret != nil && cfg.PublicKey != nil:
		return nil, errors.New("jwt: both a secret and a public key; give one")
	case cfg.Secret != nil:
		if len(cfg.Secret) < 32 {
			return nil, fmt.Errorf("jwt: the HMAC secret has %d bytes; use at least 32 random bytes (openssl rand -base64 32)", len(cfg.Secret))
		}
		key, family = cfg.Secret, hmacAlgs
	case cfg.PublicKey != nil:
		switch k := cfg.PublicKey.(type) {
		case *rsa.PublicKey:
			if k.N.BitLen() < 2048 {
				return nil, fmt.Errorf("jwt: the RSA key has %d bits; use at least 2048", k.N.BitLen())
			}
			key, family = k, rsaAlgs
		case *ecdsa.PublicKey:
			key, family = k, ecdsaAlgs(k.Curve)
			if family == nil {
				return nil, errors.New("jwt: the ECDSA key's curve is not P-256, P-384 or P-521")
			}
		case ed25519.PublicKey:
			key, family = k, ed25519Algs
		default:
			return nil, fmt.Errorf("jwt: unsupported public key type %T (want RSA, ECDSA or Ed25519)", cfg.PublicKey)
		}
	default:
		return nil, errors.New("jwt: no key: give a secret (HMAC) or a public key")
	}
	algs := family
	if len(cfg.Algorithms) > 0 {
		for _, a := range cfg.Algorithms {
			if !slices.Contains(family, a) {
				return nil, fmt.Errorf("jwt: algorithm %q does not go with this key (it verifies %v)", a, family)
			}
		}
		algs = slices.Clone(cfg.Algorithms)
	}
	if cfg.Leeway < 0 {
		return nil, errors.New("jwt: negative leeway")
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(algs),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(cfg.Leeway),
	}
	if cfg.Now != nil {
		opts = append(opts, jwt.WithTimeFunc(cfg.Now))
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	return &Verifier{key: key, algs: algs, leeway: cfg.Leeway, parser: jwt.NewParser(opts...)}, nil
}

// Algorithms returns the algorithms the verifier accepts.
func (v *Verifier) Algorithms() []string { return slices.Clone(v.algs) }

// Verify checks a token's signature and claims. The error says why a token
// is refused, never what it contains.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if len(token) > maxTokenBytes {
		return nil, fmt.Errorf("token longer than %d bytes", maxTokenBytes)
	}
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		// WithValidMethods has checked the algorithm against the key's
		// family; the key's type is checked again by the method itself.
		return v.key, nil
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Expiry is the instant a verified token stops being accepted: exp plus
// the leeway.
func (v *Verifier) Expiry(c *Claims) time.Time {
	if c.ExpiresAt == nil {
		return time.Time{}
	}
	return c.ExpiresAt.Add(v.leeway)
}

// ParsePublicKeyPEM reads an RSA, ECDSA or Ed25519 public key (PKIX
// "PUBLIC KEY", or "RSA PUBLIC KEY") or takes the key of a certificate.
func ParsePublicKeyPEM(data []byte) (any, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block: want a -----BEGIN PUBLIC KEY----- file")
	}
	switch block.Type {
	case "PUBLIC KEY":
		return x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		return cert.PublicKey, nil
	default:
		return nil, fmt.Errorf("PEM block %q: want PUBLIC KEY (a private key does not belong on the server)", block.Type)
	}
}
