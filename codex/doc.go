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
// The wire protocol follows the project's codex-protocol.md dossier; section
// and trap numbers in comments (§5.3, §8.1, trap 18 …) refer to it.
package codex
