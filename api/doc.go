// Package api is the client-facing /v1 pipeline of the proxy, free of
// Caddy: an http.Handler that serves the OpenAI-compatible endpoints
// (/v1/models, /v1/chat/completions, /v1/responses, /v1/usage) and
// Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens:
// messages.go) on each user's own ChatGPT subscription.
//
// A request goes through the stages in the order it lives, each in a file
// of its own:
//
//	authenticate.go  the API key → its key and user (or 401/403/429)
//	admit.go         the key's policy: expiry, rate, concurrency and token
//	                 budgets before the body is read; the model and effort
//	                 right after it is parsed
//	generate.go      read and translate the body (a dialect: chat,
//	                 responses or anthropic), then relay the upstream's answer
//	route.go         send it upstream on the user's accounts, failing over
//	                 on a usage limit before any output
//	record.go        the request log, the metrics and the access log line
//
// usage.go answers GET /v1/usage: the key's counters, the accounts'
// windows and every rate-limit family, and the prompt cache's use read back
// from the request log. models.go lists the models with what the live
// catalog says of them; rollout.go turns the upstream's refusal of a model
// the catalog lists (a phased rollout) into a 400 naming one the account
// has.
//
// images.go serves the Images API (/v1/images/generations and
// /v1/images/edits) through the same stages: the key's image policy, the
// body (images_body.go: JSON or multipart, each input image under
// ImagesConfig's cap), one Responses turn with the image_generation tool
// per image, relayed as data[].b64_json or image_generation.* events.
//
// websocket.go serves the WebSocket mode of /v1/responses: the key is
// checked at the upgrade, and each response.create frame runs through the
// same stages as a POST (websocket_turn.go), its SSE events relayed as
// frames; shutdown.go closes the sockets gracefully on reload and stop,
// socket_ping.go pings idle ones on a timer, and socket_ratelimits.go
// gives a turn's client the upstream's rate limits as a codex.rate_limits
// event, where an HTTP client gets x-codex headers.
// websocket_upstream.go sends a client socket's turns upstream on one
// WebSocket of the backend's own, only each turn's new items when it
// continues the socket's last response, and over HTTP whenever that socket
// cannot carry a turn with certainty (upstream_socket off: always).
//
// The Handler holds only small interfaces (deps.go): Keys, Accounts,
// Upstream, Models, Recorder and Observer. The Caddy module wires them to
// the vault, the upstream client and Prometheus; the package's tests fake
// them in memory.
//
// Every error a client sees is an *apierror.Error; the ones the proxy emits
// itself come from apierror's catalog.
package api
