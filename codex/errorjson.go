package codex

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// maxErrorJSON bounds the x-error-json header the proxy decodes.
const maxErrorJSON = 8 << 10

// errorJSONHeader decodes x-error-json, base64 of an {"error":{…}} body the
// backend adds to some errors whose body says less ({"detail":"Unauthorized"});
// it carries the real code (token_invalidated …). The zero errorBody when
// the header is absent or not base64 JSON.
func errorJSONHeader(h http.Header) errorBody {
	v := strings.TrimSpace(h.Get("X-Error-Json"))
	if v == "" || len(v) > maxErrorJSON {
		return errorBody{}
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(v); err != nil {
			return errorBody{}
		}
	}
	b := decodeErrorBody(raw)
	if !b.json {
		return errorBody{}
	}
	return b
}

// merge takes the header's code, type and message over the body's: the
// header is the precise one. The body's other fields stay.
func (b *errorBody) merge(h errorBody) {
	if !h.json {
		return
	}
	if h.code != "" {
		b.code = h.code
	}
	if h.typ != "" {
		b.typ = h.typ
	}
	if h.message != "" {
		b.message = h.message
	}
	if h.param != "" {
		b.param = h.param
	}
	if h.planType != "" && b.planType == "" {
		b.planType = h.planType
	}
}
