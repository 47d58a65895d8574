package translate

import "github.com/usemysub/caddy-codex-proxy/apierror"

// Error is the client-facing failure in the OpenAI error shape; it lives in
// the leaf package apierror so the upstream client can share it without
// importing the translator.
type Error = apierror.Error

// InvalidRequest builds a 400 invalid_request_error naming the offending
// parameter.
func InvalidRequest(param, code, format string, args ...any) *Error {
	return apierror.InvalidRequest(param, code, format, args...)
}
