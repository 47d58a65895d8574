// Package apierror is the upstream client's (codex) error in the OpenAI
// client-error shape: status, message, type, param and code. It is a leaf
// that imports nothing, so codex can say what a client should see without
// importing the translator; translate.Error has the same fields, converts
// to and from it with a plain type conversion and renders it as JSON.
package apierror

// Error is a client-facing failure. Status is the HTTP status the caller
// should answer with when no response byte has been written yet; an empty
// Type is derived from it when the error is rendered.
type Error struct {
	Status  int
	Message string
	Type    string
	Param   string
	Code    string
}

// Error implements the error interface with the client-facing message.
func (e *Error) Error() string { return e.Message }
