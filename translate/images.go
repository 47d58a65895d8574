package translate

import (
	"encoding/base64"
	"strings"
)

// normalizeImageURL checks an image URL for upstream: http(s) URLs pass
// through, base64 data URLs are re-encoded to standard padded base64
// (docs/protocol.md#input: the backend rejects URL-safe or unpadded data), anything else is a 400.
func normalizeImageURL(u, param string) (string, *Error) {
	switch {
	case hasPrefixFold(u, "https://"), hasPrefixFold(u, "http://"):
		return u, nil
	case hasPrefixFold(u, "data:"):
		mime, _, _ := strings.Cut(u[len("data:"):], ";")
		if !hasPrefixFold(mime, "image/") {
			return "", InvalidRequest(param, codeInvalidValue, "image_url at '%s' is a data URL of type %q; expected an image/* type", param, mime)
		}
		return normalizeDataURL(u, param, "image_url")
	case u == "":
		return "", InvalidRequest(param, codeMissingParam, "image_url at '%s' is empty", param)
	}
	return "", InvalidRequest(param, codeInvalidValue, "image_url at '%s' must be an http(s) URL or a base64 data URL", param)
}

// normalizeDataURL re-encodes the payload of a "data:<mime>;base64,<data>"
// URL to standard padded base64, accepting the URL-safe alphabet, missing
// padding and embedded whitespace. what names the field in errors.
func normalizeDataURL(u, param, what string) (string, *Error) {
	header, data, ok := strings.Cut(u, ",")
	if !ok || !strings.HasSuffix(strings.ToLower(header), ";base64") {
		return "", InvalidRequest(param, codeInvalidValue, "%s at '%s' must be a base64 data URL (data:<type>;base64,<data>)", what, param)
	}
	if data == "" {
		return "", InvalidRequest(param, codeInvalidValue, "%s data at '%s' is empty", what, param)
	}
	if isStdBase64(data) {
		// Already canonical: validate without re-encoding.
		if _, err := base64.StdEncoding.DecodeString(data); err == nil {
			return u, nil
		}
		return "", InvalidRequest(param, codeInvalidValue, "%s data is not valid base64 (at '%s')", what, param)
	}
	clean := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		switch c := data[i]; c {
		case ' ', '\t', '\r', '\n':
		case '-':
			clean = append(clean, '+')
		case '_':
			clean = append(clean, '/')
		default:
			clean = append(clean, c)
		}
	}
	for len(clean) > 0 && clean[len(clean)-1] == '=' {
		clean = clean[:len(clean)-1]
	}
	raw := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, err := base64.RawStdEncoding.Decode(raw, clean)
	if err != nil || n == 0 {
		return "", InvalidRequest(param, codeInvalidValue, "%s data is not valid base64 (at '%s')", what, param)
	}
	return header + "," + base64.StdEncoding.EncodeToString(raw[:n]), nil
}

// isStdBase64 reports whether s uses only the standard alphabet with
// padding at the end and a length that is a multiple of 4.
func isStdBase64(s string) bool {
	if len(s)%4 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
		case c == '=' && i >= len(s)-2:
		default:
			return false
		}
	}
	return true
}

// hasPrefixFold is strings.HasPrefix ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
