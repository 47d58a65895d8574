package apierror

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"type from 401", Error{Status: 401, Message: "no key"},
			`{"error":{"message":"no key","type":"authentication_error","param":null,"code":null}}`},
		{"type from 403", Error{Status: 403, Message: "m"},
			`{"error":{"message":"m","type":"permission_error","param":null,"code":null}}`},
		{"type from 404", Error{Status: 404, Message: "m"},
			`{"error":{"message":"m","type":"not_found_error","param":null,"code":null}}`},
		{"type from 429", Error{Status: 429, Message: "m"},
			`{"error":{"message":"m","type":"rate_limit_error","param":null,"code":null}}`},
		{"type from 5xx", Error{Status: 502, Message: "m", Code: "upstream_error"},
			`{"error":{"message":"m","type":"server_error","param":null,"code":"upstream_error"}}`},
		{"type from other 4xx", Error{Status: 413, Message: "m"},
			`{"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}}`},
		{"explicit type wins", Error{Status: 401, Type: "invalid_request_error", Code: "invalid_api_key", Message: "bad"},
			`{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`},
		{"escaped message", Error{Status: 400, Message: "a \"quote\" <tag>", Param: "messages[0]"},
			`{"error":{"message":"a \"quote\" \u003ctag\u003e","type":"invalid_request_error","param":"messages[0]","code":null}}`},
	}
	for _, tc := range tests {
		if got := string(tc.err.JSON()); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestInvalidRequest(t *testing.T) {
	e := InvalidRequest("temperature", "invalid_value", "temperature must be at most %d", 2)
	want := `{"error":{"message":"temperature must be at most 2","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`
	if e.Status != http.StatusBadRequest || string(e.JSON()) != want || e.Error() != "temperature must be at most 2" {
		t.Fatalf("got %d %s", e.Status, e.JSON())
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Length", "99")
	Write(rec, &Error{Status: http.StatusTooManyRequests, Code: "rate_limit_exceeded", Message: "slow down"})
	res := rec.Result()
	if res.StatusCode != http.StatusTooManyRequests {
		t.Errorf("status %d", res.StatusCode)
	}
	for k, want := range map[string]string{"Content-Type": "application/json", "Cache-Control": "no-store", "Content-Length": ""} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	want := `{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`
	if rec.Body.String() != want {
		t.Errorf("body %s", rec.Body.String())
	}
}

// shapingWriter renders errors its own way, as the Anthropic routes do.
type shapingWriter struct {
	http.ResponseWriter
	got *Error
}

func (s *shapingWriter) WriteAPIError(e *Error) { s.got = e }

func TestWriteHandsErrorsToAShaper(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &shapingWriter{ResponseWriter: rec}
	e := InvalidAPIKey()
	Write(w, e)
	if w.got != e || rec.Body.Len() != 0 {
		t.Fatalf("the shaper did not get the error (body %q)", rec.Body.String())
	}
}
