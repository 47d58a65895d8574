package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Limits on an imported auth.json; real files are a few KiB and 2 deep.
const (
	maxAuthJSONSize  = 1 << 20
	maxAuthJSONDepth = 16
)

// ErrAPIKeyOnly reports an auth.json that holds an OpenAI API key instead
// of a ChatGPT login.
var ErrAPIKeyOnly = errors.New("vault: this auth.json holds an OpenAI API key, not a ChatGPT login; run `codex login` with ChatGPT and import the new file")

// Field names accepted in auth.json files, official spelling first.
var (
	fieldIDToken      = []string{"id_token", "idToken"}
	fieldAccessToken  = []string{"access_token", "accessToken"}
	fieldRefreshToken = []string{"refresh_token", "refreshToken"}
	fieldAccountID    = []string{"account_id", "accountId", "chatgpt_account_id"}
	fieldLastRefresh  = []string{"last_refresh", "lastRefresh"}
	fieldEmail        = []string{"email"}
	fieldAPIKey       = []string{"OPENAI_API_KEY", "openai_api_key", "api_key", "apiKey"}
	fieldAuthMode     = []string{"auth_mode", "authMode"}
)

// ParseAuthJSON reads a Codex CLI login file: the official
// ~/.codex/auth.json ({"tokens":{...},"last_refresh":...}), or flat shapes
// with the tokens under "token" or at the top level, in snake_case or
// camelCase. Account id, plan, email and expiry come from the JWT claims
// (id token, then access token); an explicit account_id wins. Errors never
// contain token values.
func ParseAuthJSON(data []byte) (TokenBundle, error) {
	if len(data) > maxAuthJSONSize {
		return TokenBundle{}, fmt.Errorf("vault: auth.json is larger than %d KiB", maxAuthJSONSize>>10)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if err := checkDepth(data, maxAuthJSONDepth); err != nil {
		return TokenBundle{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return TokenBundle{}, errors.New("vault: auth.json is not valid JSON")
	}
	if dec.More() {
		return TokenBundle{}, errors.New("vault: auth.json has data after the JSON object")
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return TokenBundle{}, errors.New("vault: auth.json must be a JSON object")
	}
	tok := tokenObject(root)
	if tok == nil {
		apiKey, _ := stringField(root, fieldAPIKey)
		mode, _ := stringField(root, fieldAuthMode)
		if apiKey != "" || strings.Contains(strings.ToLower(mode), "api") {
			return TokenBundle{}, ErrAPIKeyOnly
		}
		return TokenBundle{}, errors.New("vault: auth.json holds no ChatGPT tokens (expected tokens.access_token and tokens.refresh_token)")
	}
	var b TokenBundle
	for _, f := range []struct {
		dst   *string
		names []string
	}{
		{&b.IDToken, fieldIDToken},
		{&b.AccessToken, fieldAccessToken},
		{&b.RefreshToken, fieldRefreshToken},
		{&b.AccountID, fieldAccountID},
	} {
		s, err := stringField(tok, f.names)
		if err != nil {
			return TokenBundle{}, err
		}
		*f.dst = strings.TrimSpace(s)
	}
	if b.RefreshToken == "" {
		return TokenBundle{}, errors.New("vault: auth.json has no refresh_token, so the login cannot be kept alive; run `codex login` with ChatGPT and import the new file")
	}
	lr, err := timeField(fieldLastRefresh, tok, root)
	if err != nil {
		return TokenBundle{}, err
	}
	b.LastRefresh = lr
	b = withClaims(b, false)
	if b.Email == "" {
		if b.Email, err = stringField(tok, fieldEmail); err != nil {
			return TokenBundle{}, err
		}
	}
	if b.AccountID == "" {
		return TokenBundle{}, errors.New("vault: auth.json has no ChatGPT account id (no tokens.account_id and no chatgpt_account_id claim in the tokens)")
	}
	return b, nil
}

// tokenObject finds the object that holds the tokens: "tokens", "token",
// or the top level.
func tokenObject(root map[string]any) map[string]any {
	for _, name := range []string{"tokens", "token"} {
		if m, ok := root[name].(map[string]any); ok && hasTokenField(m) {
			return m
		}
	}
	if hasTokenField(root) {
		return root
	}
	return nil
}

// hasTokenField reports whether m has any OAuth token field.
func hasTokenField(m map[string]any) bool {
	for _, names := range [][]string{fieldAccessToken, fieldRefreshToken, fieldIDToken} {
		for _, n := range names {
			if s, ok := m[n].(string); ok && s != "" {
				return true
			}
		}
	}
	return false
}

// stringField returns the first of names present in m; null counts as
// absent, other non-string values are an error naming the field.
func stringField(m map[string]any, names []string) (string, error) {
	for _, n := range names {
		val, ok := m[n]
		if !ok || val == nil {
			continue
		}
		s, ok := val.(string)
		if !ok {
			return "", fmt.Errorf("vault: auth.json field %q must be a string", n)
		}
		return s, nil
	}
	return "", nil
}

// timeField reads an RFC 3339 string or unix seconds from the first object
// that has one of names.
func timeField(names []string, objs ...map[string]any) (time.Time, error) {
	for _, m := range objs {
		for _, n := range names {
			switch val := m[n].(type) {
			case nil:
				continue
			case string:
				t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(val))
				if err != nil {
					return time.Time{}, fmt.Errorf("vault: auth.json field %q is not an RFC 3339 time", n)
				}
				return t.UTC(), nil
			case json.Number:
				f, err := val.Float64()
				if err != nil || f <= 0 || f > 1e11 {
					return time.Time{}, fmt.Errorf("vault: auth.json field %q is not a unix time", n)
				}
				return time.Unix(int64(f), 0).UTC(), nil
			default:
				return time.Time{}, fmt.Errorf("vault: auth.json field %q must be a time string", n)
			}
		}
	}
	return time.Time{}, nil
}

// checkDepth refuses JSON nested deeper than max before it is decoded.
func checkDepth(data []byte, max int) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range data {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				return fmt.Errorf("vault: auth.json nests deeper than %d levels", max)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}
