// Package anthropic maps Anthropic's Messages API (what Claude Code and
// the Anthropic SDKs speak) to the Codex Responses dialect and back: a
// Messages request becomes a Responses request that translate then
// normalizes exactly as it does /v1/responses (catalog, tool names, call
// ids, reasoning, the request writer), and the upstream's events become
// Messages stream events (Stream) or one Message object (Aggregate).
//
// It is pure, as translate is: it imports nothing of the project but
// translate and apierror (the one client-facing error type).
package anthropic
