package apierror

import (
	"fmt"
	"net/http"
)

// The catalog: every error the proxy emits on its own account, as opposed
// to the upstream's errors it passes on (codex) and the translator's
// per-parameter 400s (InvalidRequest). Each constructor returns a new
// value, so a caller may adjust it (restore a call id in the message, say)
// without touching anyone else's.
//
// Codes are stable: clients and the request log match on them.
const (
	CodeUnknownURL            = "unknown_url"
	CodeMethodNotAllowed      = "method_not_allowed"
	CodeInvalidAPIKey         = "invalid_api_key"
	CodeAccountDisabled       = "account_disabled"
	CodeTooManyFailedAttempts = "too_many_failed_attempts"
	CodeVaultUnavailable      = "vault_unavailable"
	CodeRelinkNeeded          = "relink_needed"
	CodeChatGPTNotLinked      = "chatgpt_not_linked"
	CodeAccountNotLinked      = "account_not_linked"
	CodeTokenRefreshFailed    = "token_refresh_unavailable"
	CodeUpstreamError         = "upstream_error"
	CodeModelNotFound         = "model_not_found"
	CodeInvalidBody           = "invalid_body"
	CodeInvalidValue          = "invalid_value"
	CodeRequestTooLarge       = "request_too_large"
	CodeUnsupportedEncoding   = "unsupported_content_encoding"
	CodeInternal              = "internal_error"
	CodeScopeNotAllowed       = "scope_not_allowed"
	// CodePreviousResponseNotFound is OpenAI's own code for an unknown
	// previous_response_id.
	CodePreviousResponseNotFound = "previous_response_not_found"
	CodeResponseNotFound         = "response_not_found"
	CodeItemNotFound             = "item_not_found"
	CodeStoreUnavailable         = "response_store_unavailable"
	CodeInvalidEvent             = "invalid_event"
	// CodeNoImage is an image turn that finished without an image.
	CodeNoImage = "image_generation_failed"
	// CodeImageTooLarge is an input image over the configured cap.
	CodeImageTooLarge      = "image_too_large"
	CodeResponseInProgress = "response_in_progress"
	// CodeSocketLimitReached is the backend's own code for a socket at its
	// age limit: the Codex CLI reads it as "open a new socket and retry".
	CodeSocketLimitReached = "websocket_connection_limit_reached"
	CodeShuttingDown       = "shutting_down"
	// CodeTierUnavailable is a service tier the upstream refused for the
	// model or the account ("Unsupported service_tier: …"); the backend's
	// own code for it.
	CodeTierUnavailable = "unsupported_service_tier"
	// CodeModelNotSupported is a model the account's catalog lists but
	// the upstream refuses for the account (a phased rollout).
	CodeModelNotSupported = "model_not_supported"
)

// UnknownURL answers a path the proxy does not serve (404).
func UnknownURL(method, path, served string) *Error {
	return &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Code: CodeUnknownURL,
		Message: "Unknown request URL: " + method + " " + path + ". This proxy serves " + served + "."}
}

// MethodNotAllowed answers a known path asked with the wrong method (405);
// the caller sets Allow.
func MethodNotAllowed(method, path, want string) *Error {
	return &Error{Status: http.StatusMethodNotAllowed, Type: TypeInvalidRequest, Code: CodeMethodNotAllowed,
		Message: method + " is not allowed on " + path + "; use " + want}
}

// InvalidAPIKey answers a request without a valid proxy key (401). The
// type is invalid_request_error, as OpenAI's own answer is.
func InvalidAPIKey() *Error {
	return &Error{Status: http.StatusUnauthorized, Type: TypeInvalidRequest, Code: CodeInvalidAPIKey,
		Message: "Incorrect API key provided. Use a proxy key (cpk_…) in the Authorization: Bearer header."}
}

// AccountDisabled answers a genuine key of a user an operator disabled (403).
func AccountDisabled() *Error {
	return &Error{Status: http.StatusForbidden, Type: TypePermission, Code: CodeAccountDisabled,
		Message: "this account has been disabled by an operator"}
}

// TooManyFailedAttempts answers an address over its failed-key limit (429).
func TooManyFailedAttempts() *Error {
	return &Error{Status: http.StatusTooManyRequests, Type: TypeRateLimit, Code: CodeTooManyFailedAttempts,
		Message: "Too many requests with invalid API keys from this address; wait the seconds in Retry-After before trying another key. Requests with a valid key are served as usual."}
}

// KeyCheckUnavailable answers when the vault failed while checking a key
// (503): the proxy, not the client, failed, so clients retry.
func KeyCheckUnavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: TypeServer, Code: CodeVaultUnavailable,
		Message: "the API key could not be checked right now; retry shortly"}
}

// VaultStarting answers while the vault is not open yet (503).
func VaultStarting() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: TypeServer, Code: CodeVaultUnavailable,
		Message: "the proxy is starting and its vault is not open yet; retry in a few seconds"}
}

// DatabaseUnavailable answers when the shared database is down (503).
func DatabaseUnavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: TypeServer, Code: CodeVaultUnavailable,
		Message: "the proxy's database is unavailable right now; retry shortly"}
}

// RelinkNeeded answers when the user's ChatGPT sign-in expired or was
// revoked (401): only the user can fix it.
func RelinkNeeded() *Error {
	return &Error{Status: http.StatusUnauthorized, Type: TypeAuthentication, Code: CodeRelinkNeeded,
		Message: "your ChatGPT sign-in has expired or was revoked: re-link your ChatGPT account in the dashboard (or re-import auth.json) and retry"}
}

// ChatGPTNotLinked answers a user with no linked ChatGPT account (403).
func ChatGPTNotLinked() *Error {
	return &Error{Status: http.StatusForbidden, Type: TypePermission, Code: CodeChatGPTNotLinked,
		Message: "no ChatGPT account is linked to this user yet: link one in the dashboard or import an auth.json"}
}

// AccountNotLinked answers a key pinned to an account that is gone (403).
func AccountNotLinked() *Error {
	return &Error{Status: http.StatusForbidden, Type: TypePermission, Code: CodeAccountNotLinked,
		Message: "this API key is pinned to a ChatGPT account that is no longer linked: link it again or change the key's account pin"}
}

// TokenRefreshFailed answers when refreshing the ChatGPT sign-in failed
// for a reason that may pass (502).
func TokenRefreshFailed() *Error {
	return &Error{Status: http.StatusBadGateway, Type: TypeServer, Code: CodeTokenRefreshFailed,
		Message: "refreshing your ChatGPT sign-in failed for now; retry shortly"}
}

// UpstreamFailed answers an upstream failure nothing more is known of (502).
func UpstreamFailed() *Error {
	return &Error{Status: http.StatusBadGateway, Type: TypeServer, Code: CodeUpstreamError,
		Message: "the upstream request failed"}
}

// ModelNotFound answers a model the user's plan does not offer (404).
func ModelNotFound(model string) *Error {
	return &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Code: CodeModelNotFound, Param: "model",
		Message: "The model '" + model + "' does not exist or is not available to your ChatGPT plan."}
}

// TierUnavailable answers a request whose service tier the upstream
// refused (400): the Fast tier is not offered for this model or on this
// plan. upstream is the upstream's own message ("" when it gave none).
func TierUnavailable(upstream string) *Error {
	msg := "The Fast tier (service_tier fast or priority) is not available for this model on the linked ChatGPT account. " +
		"Leave service_tier out or send \"default\"; if the key or the server sets the Fast tier for you, ask the operator."
	if upstream != "" {
		msg += " Upstream said: " + upstream
	}
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Code: CodeTierUnavailable, Param: "service_tier", Message: msg}
}

// ModelNotSupported answers a model the account's catalog lists but the
// upstream refused for it ("not supported when using Codex with a ChatGPT
// account": the model reaches accounts in phases) (400). suggestion is a
// model the account has ("" when none is known).
func ModelNotSupported(model, suggestion string) *Error {
	msg := "The model '" + model + "' is not available to the linked ChatGPT account yet: the upstream rolls it out to accounts in phases."
	if suggestion != "" {
		msg += " Use '" + suggestion + "', which this account has, or try again later."
	} else {
		msg += " Try again later."
	}
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Code: CodeModelNotSupported, Param: "model", Message: msg}
}

// InvalidBody answers a body that cannot be read or decoded (400).
func InvalidBody(format string, args ...any) *Error {
	return InvalidRequest("", CodeInvalidBody, format, args...)
}

// InvalidValue answers a parameter with a value the proxy does not take (400).
func InvalidValue(param, format string, args ...any) *Error {
	return InvalidRequest(param, CodeInvalidValue, format, args...)
}

// RequestTooLarge answers a body over the size limit, after decoding (413).
func RequestTooLarge(limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Type: TypeInvalidRequest, Code: CodeRequestTooLarge,
		Message: fmt.Sprintf("the request body exceeds %d bytes", limit)}
}

// UnsupportedEncoding answers a Content-Encoding the proxy cannot decode (415).
func UnsupportedEncoding(enc string) *Error {
	return &Error{Status: http.StatusUnsupportedMediaType, Type: TypeInvalidRequest, Code: CodeUnsupportedEncoding,
		Message: fmt.Sprintf("Content-Encoding %q is not supported; send identity, gzip, br or zstd", enc)}
}

// Internal answers a failure of the proxy itself (500); message says what
// the client can do, never what broke inside.
func Internal(message string) *Error {
	return &Error{Status: http.StatusInternalServerError, Type: TypeServer, Code: CodeInternal, Message: message}
}

// ScopeNotAllowed answers a key asking for more than its policy lets it
// see (403).
func ScopeNotAllowed(message string) *Error {
	return &Error{Status: http.StatusForbidden, Type: TypePermission, Code: CodeScopeNotAllowed, Message: message}
}

// PreviousResponseNotFound answers a previous_response_id that names no
// response the key's user stored (unknown, expired, deleted, another
// user's) (404), in OpenAI's words.
func PreviousResponseNotFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Code: CodePreviousResponseNotFound,
		Param: "previous_response_id", Message: "Previous response with id '" + id + "' not found."}
}

// ResponseNotFound answers GET or DELETE /v1/responses/{id} for a response
// the key's user has not stored (404).
func ResponseNotFound(id string) *Error {
	return &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Code: CodeResponseNotFound,
		Message: "Response with id '" + id + "' not found."}
}

// ItemNotFound answers an item_reference to an item no stored response
// of the key's user holds (404).
func ItemNotFound(param, id string) *Error {
	return &Error{Status: http.StatusNotFound, Type: TypeInvalidRequest, Code: CodeItemNotFound, Param: param,
		Message: "Item with id '" + id + "' not found."}
}

// StoreUnavailable answers a request that needs the response store when
// the store could not be read (503).
func StoreUnavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: TypeServer, Code: CodeStoreUnavailable,
		Message: "stored responses cannot be read right now; try again shortly"}
}

// InvalidEvent answers a WebSocket frame that is not a client event the
// proxy takes (400, as an error event; the socket stays open).
func InvalidEvent(format string, args ...any) *Error {
	return InvalidRequest("type", CodeInvalidEvent, format, args...)
}

// ResponseInProgress answers a response.create sent while the socket's
// previous response is still running (400, as an error event): one
// response at a time per socket.
func ResponseInProgress() *Error {
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Code: CodeResponseInProgress,
		Message: "a response is already in progress on this WebSocket; wait for its response.completed (or open another socket)"}
}

// SocketLimitReached answers a response.create on a socket that is closing
// (its maximum age, or the proxy restarting): the client opens a new one.
func SocketLimitReached(reason string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Code: CodeSocketLimitReached,
		Message: reason + "; open a new WebSocket connection to continue"}
}

// ShuttingDown refuses a WebSocket upgrade while this instance of the proxy
// stops (503); a retry reaches the new configuration or another instance.
func ShuttingDown() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: TypeServer, Code: CodeShuttingDown,
		Message: "the proxy is restarting; retry in a moment"}
}

// ImageTooLarge is 413 for an input image (or mask) over the cap.
func ImageTooLarge(param string, size, limit int64) *Error {
	return &Error{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: CodeImageTooLarge, Param: param,
		Message: fmt.Sprintf("The image '%s' is %d bytes; images may be at most %d bytes (max_image_size).", param, size, limit)}
}
