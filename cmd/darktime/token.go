package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/server/auth"
)

func init() { subcommands = append(subcommands, newTokenCmd) }

func newTokenCmd() *cobra.Command {
	var r auth.TokenRequest
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
			tok, err := r.Mint()
			if err != nil {
				return usageIf(err, auth.ErrTokenRequest)
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.SecretEnv, "secret-env", "", "environment variable holding the HMAC secret")
	f.StringVar(&r.KeyFile, "key-file", "", "PEM private key (RS*/PS*/ES*/EdDSA) or a file holding the HMAC secret")
	f.StringVar(&r.Signer.Algorithm, "alg", "", "signing algorithm (default HS256, RS256, the curve's ES*, or EdDSA)")
	f.StringVar(&r.Sub, "sub", "", "subject: the user (a user:{sub} rule lets it read user:<sub>)")
	f.StringSliceVar(&r.Channels, "channels", nil, "channels or patterns the token may read (comma-separated or repeated)")
	f.DurationVar(&r.Signer.TTL, "ttl", auth.DefaultTTL, "lifetime")
	f.StringVar(&r.Signer.Issuer, "issuer", "", "iss claim")
	f.StringVar(&r.Signer.Audience, "audience", "", "aud claim")
	f.StringArrayVar(&r.Claims, "claim", nil, "extra claim NAME=VALUE (repeatable)")
	return cmd
}
