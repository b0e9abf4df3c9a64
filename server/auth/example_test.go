package auth_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/darktime/darktime/server/auth"
)

// A user reads their own channel with a token whose sub is theirs;
// everything but user: channels is public.
func ExampleAuthorizer_AuthorizeSubscribe() {
	secret := []byte("an HMAC secret of at least 32 bytes")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }

	own, _ := auth.ParseRule("user:{sub}", "private")
	rest, _ := auth.ParseRule("*", "public")
	v, err := auth.NewVerifier(auth.VerifierConfig{Secret: secret, Now: clock})
	if err != nil {
		panic(err)
	}
	a := &auth.Authorizer{Rules: auth.Rules{own, rest}, Verifier: v}

	signer, _ := auth.NewSigner(auth.SignerConfig{Secret: secret, TTL: time.Hour, Now: clock})
	token, _ := signer.Mint("42", nil)

	for _, req := range []struct {
		token    string
		channels []string
	}{
		{"", []string{"thread:7"}},
		{"", []string{"user:42"}},
		{token, []string{"thread:7", "user:42"}},
		{token, []string{"user:43"}},
	} {
		until, err := a.AuthorizeSubscribe(req.token, req.channels)
		switch {
		case errors.Is(err, auth.ErrUnauthorized):
			fmt.Println(req.channels, "401:", err)
		case errors.Is(err, auth.ErrForbidden):
			fmt.Println(req.channels, "403:", err)
		case until.IsZero():
			fmt.Println(req.channels, "open")
		default:
			fmt.Println(req.channels, "until", until.Format(time.TimeOnly))
		}
	}
	// Output:
	// [thread:7] open
	// [user:42] 401: channel "user:42" is private: send a token as Authorization: Bearer <jwt> or ?token=<jwt>
	// [thread:7 user:42] until 04:04:05
	// [user:43] 403: the token (sub "42") does not allow channel "user:43"
}
