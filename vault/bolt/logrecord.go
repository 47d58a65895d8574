package bolt

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// appendLogRecord appends r as json.Marshal encodes a vault.LogRecord,
// byte for byte, without its reflection: AppendLogs encodes every record
// of a batch into one buffer, so a record costs no allocation of its own
// (TestLogRecordEncoding holds it to json.Marshal for every field). A
// record json.Marshal would escape differently (a string with a byte
// other than printable ASCII, or one of < > &) or refuse (a year outside
// 0–9999) goes through json.Marshal itself.
func appendLogRecord(dst []byte, r *vault.LogRecord) ([]byte, error) {
	if !plainLogRecord(r) {
		b, err := json.Marshal(r)
		return append(dst, b...), err
	}
	dst = append(dst, `{"time":"`...)
	dst = r.Time.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	dst = appendStr(dst, `,"user_id":"`, r.UserID)
	dst = appendStr(dst, `,"key_id":"`, r.KeyID)
	dst = appendStr(dst, `,"request_id":"`, r.RequestID)
	dst = appendStr(dst, `,"route":"`, r.Route)
	dst = appendStr(dst, `,"model":"`, r.Model)
	dst = appendStr(dst, `,"effort":"`, r.Effort)
	dst = appendStr(dst, `,"service_tier":"`, r.ServiceTier)
	dst = appendStr(dst, `,"requested_tier":"`, r.RequestedTier)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, `,"duration":`...)
	dst = strconv.AppendInt(dst, int64(r.Duration), 10)
	dst = appendInt(dst, `,"ttfb":`, int64(r.TTFB))
	dst = appendInt(dst, `,"input_tokens":`, r.InputTokens)
	dst = appendInt(dst, `,"output_tokens":`, r.OutputTokens)
	dst = appendInt(dst, `,"cached_tokens":`, r.CachedTokens)
	dst = appendInt(dst, `,"reasoning_tokens":`, r.ReasoningTokens)
	dst = appendStr(dst, `,"error_code":"`, r.ErrorCode)
	dst = appendStr(dst, `,"account_id":"`, r.AccountID)
	dst = appendStr(dst, `,"failover_from":"`, r.FailoverFrom)
	if r.Estimated {
		dst = append(dst, `,"estimated":true`...)
	}
	return append(dst, '}'), nil
}

// appendStr appends an omitempty string member (name ends with its opening
// quote); s must be plain (plainString).
func appendStr(dst []byte, name, s string) []byte {
	if s == "" {
		return dst
	}
	return append(append(append(dst, name...), s...), '"')
}

// appendInt appends an omitempty integer member.
func appendInt(dst []byte, name string, n int64) []byte {
	if n == 0 {
		return dst
	}
	return strconv.AppendInt(append(dst, name...), n, 10)
}

// plainLogRecord reports whether appendLogRecord's own encoding is
// json.Marshal's for r.
func plainLogRecord(r *vault.LogRecord) bool {
	if y := r.Time.Year(); y < 0 || y > 9999 {
		return false
	}
	for _, s := range [...]string{r.UserID, r.KeyID, r.RequestID, r.Route, r.Model, r.Effort, r.ServiceTier,
		r.RequestedTier, r.ErrorCode, r.AccountID, r.FailoverFrom} {
		if !plainString(s) {
			return false
		}
	}
	return true
}

// plainString reports whether encoding/json writes s without escapes:
// printable ASCII other than '"', '\\' and the HTML characters it escapes.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
