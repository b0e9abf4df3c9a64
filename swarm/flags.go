package swarm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Flags are the parts of a Config that `darktime swarm` takes as text;
// Apply parses them into a Config. Empty fields leave the Config alone.
type Flags struct {
	// Distribution, Pacing and Churn as ParseDistribution, ParsePacing and
	// ParseLifetime read them.
	Distribution, Pacing, Churn string
	// Phases and Slowdowns as ParsePhase and ParseSlowdown read them.
	Phases, Slowdowns []string
	// Subscribe, SubscribeHeaders, Publish and Extract override the
	// profile's, field by field (headers as a whole); Extract.JSONString
	// only turns the escape handling on.
	Subscribe        string
	SubscribeHeaders []string
	Publish          PublishTemplate
	Extract          Extract
	// TokenClaims are NAME=VALUE claims added to Config.Token.
	TokenClaims []string
}

// Apply parses f into cfg. Every error wraps ErrConfig (a usage error).
func (f Flags) Apply(cfg *Config) error {
	f.overrideProfile(&cfg.Profile)
	var err error
	if f.Distribution != "" {
		if cfg.Distribution, err = ParseDistribution(f.Distribution); err != nil {
			return err
		}
	}
	if f.Pacing != "" {
		if cfg.Pacing, err = ParsePacing(f.Pacing); err != nil {
			return err
		}
	}
	if f.Churn != "" {
		if cfg.Churn, err = ParseLifetime(f.Churn); err != nil {
			return err
		}
	}
	for _, s := range f.Phases {
		p, err := ParsePhase(s)
		if err != nil {
			return err
		}
		cfg.Phases = append(cfg.Phases, p)
	}
	for _, s := range f.Slowdowns {
		sd, err := ParseSlowdown(s)
		if err != nil {
			return err
		}
		cfg.Slowdowns = append(cfg.Slowdowns, sd)
	}
	return f.addClaims(cfg.Token)
}

func (f Flags) overrideProfile(p *Profile) {
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&p.Subscribe, f.Subscribe)
	set(&p.Publish.Method, f.Publish.Method)
	set(&p.Publish.URL, f.Publish.URL)
	set(&p.Publish.Body, f.Publish.Body)
	set(&p.Publish.BatchBody, f.Publish.BatchBody)
	set(&p.Publish.BatchSeparator, f.Publish.BatchSeparator)
	if f.Publish.Batch != 0 {
		p.Publish.Batch = f.Publish.Batch
	}
	set(&p.Extract.Seq, f.Extract.Seq)
	set(&p.Extract.TS, f.Extract.TS)
	set(&p.Extract.Channel, f.Extract.Channel)
	if f.Extract.JSONString {
		p.Extract.JSONString = true
	}
	if len(f.Publish.Headers) > 0 {
		p.Publish.Headers = f.Publish.Headers
	}
	if len(f.SubscribeHeaders) > 0 {
		p.SubscribeHeaders = f.SubscribeHeaders
	}
}

func (f Flags) addClaims(t *TokenConfig) error {
	if t == nil {
		return nil
	}
	for _, kv := range f.TokenClaims {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return flagError(fmt.Sprintf("--token-claim %q: want NAME=VALUE", kv))
		}
		if t.Claims == nil {
			t.Claims = map[string]string{}
		}
		t.Claims[k] = v
	}
	return nil
}

// ParseProfile reads a profile as JSON (fields as in Profile; unknown
// fields refused); the error is the decoder's.
func ParseProfile(data []byte) (Profile, error) {
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&p)
	return p, err
}

// ProfileByName is the built-in profile name, or an error naming the
// others.
func ProfileByName(name string) (Profile, error) {
	p, ok := LookupProfile(name)
	if !ok {
		return p, flagError(fmt.Sprintf("unknown --profile %q: want one of %s", name, strings.Join(ProfileNames(), ", ")))
	}
	return p, nil
}

// flagError is a bad flag value: it wraps ErrConfig and says only what
// is wrong with the flag.
type flagError string

func (e flagError) Error() string { return string(e) }
func (e flagError) Unwrap() error { return ErrConfig }
