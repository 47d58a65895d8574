// Package relay carries one upstream Codex response to an API client: a
// streamed answer as Server-Sent Events written in bursts with keepalives,
// or a whole one aggregated into a single JSON body. It knows nothing of
// Caddy; the handler picks the translator, then logs and counts the
// Outcome.
package relay
