package translate

import "github.com/usemysub/caddy-codex-proxy/apierror"

// Error is the proxy's client-facing error, apierror.Error, as the mapping
// uses it: what it refuses in a request, and what a stream reports when it
// ends in failure.
type Error = apierror.Error

// InvalidRequest builds a 400 invalid_request_error naming the offending
// parameter (apierror.InvalidRequest).
func InvalidRequest(param, code, format string, args ...any) *Error {
	return apierror.InvalidRequest(param, code, format, args...)
}

// invalidBody answers a body that is not what the endpoint takes (400).
func invalidBody(format string, args ...any) *Error {
	return InvalidRequest("", apierror.CodeInvalidBody, format, args...)
}
