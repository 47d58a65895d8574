// Package translate maps between the OpenAI APIs clients speak (Chat
// Completions and Responses) and the strict Responses dialect of the ChatGPT
// Codex backend: request bodies one way, server-sent event streams the other.
// It imports no Caddy package and never buffers a whole stream unless a
// client asked for a non-stream answer.
package translate
