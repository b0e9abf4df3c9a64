package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/server"
	"github.com/darktime/darktime/server/auth"
)

func init() { subcommands = append(subcommands, newTokenCmd) }

// loadAuth reads `darktime server --auth FILE`; no file leaves subscribing
// open (a nil Authorizer, not a nil *auth.Authorizer in the interface).
func loadAuth(cmd *cobra.Command, file string) (server.Authorizer, error) {
	if file == "" {
		return nil, nil
	}
	data, err := readYAMLFile(cmd, file)
	if err != nil {
		return nil, usagef("--auth: %v", err)
	}
	a, err := auth.LoadNamed(file, data, auth.LoadOptions{})
	if err != nil {
		if errors.Is(err, auth.ErrInvalidConfig) {
			return nil, usagef("--auth: %v", err)
		}
		return nil, err
	}
	return a, nil
}

func newTokenCmd() *cobra.Command {
	var (
		secretEnv, keyFile string
		cfg                auth.SignerConfig
		sub                string
		channels           []string
		claims             []string
	)
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint a JWT for subscribing to private channels (darktime server --auth)",
		Long: `Mint a JWT for darktime server --auth: sub, exp (now + --ttl), iat, and the channels
it may read (patterns allowed). The key: --secret-env VAR (HS256/384/512) or --key-file FILE
(a PEM private key for RS*/PS*/ES*/EdDSA, or a file holding the HMAC secret).

  export DARKTIME_JWT_SECRET=$(openssl rand -base64 32)
  darktime token --secret-env DARKTIME_JWT_SECRET --sub 42 --ttl 1h
  darktime token --key-file jwt-private.pem --sub admin --channels 'user:*' --ttl 10m`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sub == "" {
				return usagef("--sub is needed: the user the token is for")
			}
			var err error
			if cfg.Secret, cfg.PrivateKey, err = auth.LoadSignerKey(secretEnv, keyFile, nil); err != nil {
				return usagef("key: %v", err)
			}
			for _, kv := range claims {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("--claim %q: want NAME=VALUE", kv)
				}
				if cfg.Extra == nil {
					cfg.Extra = map[string]any{}
				}
				cfg.Extra[k] = v
			}
			for _, c := range channels {
				if _, err := auth.ParsePattern(c); err != nil {
					return usagef("--channels: %v", err)
				}
			}
			signer, err := auth.NewSigner(cfg)
			if err != nil {
				return usagef("%v", err)
			}
			tok, err := signer.Mint(sub, channels)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&secretEnv, "secret-env", "", "environment variable holding the HMAC secret")
	f.StringVar(&keyFile, "key-file", "", "PEM private key (RS*/PS*/ES*/EdDSA) or a file holding the HMAC secret")
	f.StringVar(&cfg.Algorithm, "alg", "", "signing algorithm (default HS256, RS256, the curve's ES*, or EdDSA)")
	f.StringVar(&sub, "sub", "", "subject: the user (a user:{sub} rule lets it read user:<sub>)")
	f.StringSliceVar(&channels, "channels", nil, "channels or patterns the token may read (comma-separated or repeated)")
	f.DurationVar(&cfg.TTL, "ttl", time.Hour, "lifetime")
	f.StringVar(&cfg.Issuer, "issuer", "", "iss claim")
	f.StringVar(&cfg.Audience, "audience", "", "aud claim")
	f.StringArrayVar(&claims, "claim", nil, "extra claim NAME=VALUE (repeatable)")
	return cmd
}
