// Package codex talks to the ChatGPT "Codex" backend on behalf of one linked
// ChatGPT account at a time: the streaming Responses call with its headers,
// retries and error mapping, the rate-limit headers, the per-account model
// catalog, and the OAuth flows (authorization code with PKCE, refresh,
// device code) that produce the tokens.
//
// The package holds no credentials itself: every upstream call takes a
// TokenSource supplied by the caller (the vault), so one Client serves all
// users. Tokens never appear in error messages, logs or URLs. Errors meant
// for API clients are *UpstreamError values that unwrap to *apierror.Error.
//
// The wire protocol is described in docs/protocol.md; comments point into it
// by anchor, such as docs/protocol.md#retries.
package codex
