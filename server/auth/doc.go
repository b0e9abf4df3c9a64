// Package auth authorizes subscriptions to darktime's reference server with
// channel rules and signed tokens (JWTs), as Centrifugo and Mercure do.
//
// Rules are ordered patterns, each public or private; the first that
// matches a channel decides (a channel no rule matches is private). A
// pattern is a channel name in which `*` stands for any run of channel
// characters and `{sub}` for the token's subject: the rule `user:{sub}`
// makes every `user:` channel private and lets a token read the one that
// carries its own `sub`, without a channels claim.
//
// Tokens are JWTs: HS256/384/512 with a shared secret, RS*/PS*/ES*/EdDSA
// with a public key. The accepted algorithms are pinned to the key's type
// (so `alg: none` and an HMAC token "signed" with the public key are
// refused), `exp` is required, `iss` and `aud` are checked when configured.
// The claim `channels` lists the channels or patterns a token may read
// beyond the `{sub}` rules.
//
// The server sees only [Authorizer.AuthorizeSubscribe]; a token that stops
// being valid ends its streams at the instant it returns.
package auth
