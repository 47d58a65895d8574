package codextest

import (
	"fmt"
	"net/http"
	"strings"
)

// apiError is a non-2xx answer in one of the backend's two body styles.
type apiError struct {
	status int
	body   any
}

func (e *apiError) write(w http.ResponseWriter) { writeJSON(w, e.status, e.body) }

// detail is the FastAPI style, {"detail": msg}.
func detail(status int, msg string) *apiError {
	return &apiError{status, map[string]any{"detail": msg}}
}

// oaiError is the OpenAI style, {"error":{message,type,param,code}} with
// null param/code when empty.
func oaiError(status int, msg, typ, param, code string) *apiError {
	e := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if param != "" {
		e["param"] = param
	}
	if code != "" {
		e["code"] = code
	}
	return &apiError{status, map[string]any{"error": e}}
}

func badRequest(msg, param, code string) *apiError {
	return oaiError(http.StatusBadRequest, msg, "invalid_request_error", param, code)
}

// unsupportedValue is the backend's text for a value a model refuses (docs/protocol.md#effort).
func unsupportedValue(value, model, param string, allowed []string) *apiError {
	return badRequest(fmt.Sprintf("Unsupported value: '%s' is not supported with the '%s' model. Supported values are: %s.",
		value, model, quoteList(allowed)), param, "unsupported_value")
}

// quoteList renders 'a', 'b', and 'c' the way OpenAI errors do.
func quoteList(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "'" + v + "'"
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	case 2:
		return q[0] + " and " + q[1]
	default:
		return strings.Join(q[:len(q)-1], ", ") + ", and " + q[len(q)-1]
	}
}
