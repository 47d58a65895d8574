// Package claims reads the routing metadata that ChatGPT OAuth tokens carry in
// their JWT payload: account id, plan, email and expiry. Signatures are not
// checked: the claims only pick headers and display values, while the
// upstream itself decides whether a token is valid.
package claims

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// maxTokenLen bounds what Parse will decode; real tokens are a few KiB.
const maxTokenLen = 64 << 10

// authNamespace is the claim object ChatGPT tokens keep their metadata in.
const authNamespace = "https://api.openai.com/auth"

// profileNamespace holds the email on tokens that lack a top-level one.
const profileNamespace = "https://api.openai.com/profile"

// Claims is what the proxy uses from an id or access token.
type Claims struct {
	// AccountID is the ChatGPT account (workspace) id sent as ChatGPT-Account-ID.
	AccountID string
	// PlanType is the subscription plan: free, plus, pro, team, business, …
	PlanType string
	// UserID is the ChatGPT user id.
	UserID string
	// Email is the account's email address.
	Email string
	// Expiry is the token's exp claim; zero when absent.
	Expiry time.Time
}

// ErrNotJWT reports a token that is not a three-part JWT with a JSON payload.
var ErrNotJWT = errors.New("token is not a JWT with a readable payload")

// Parse decodes the payload of a JWT without checking its signature.
func Parse(token string) (Claims, error) {
	if len(token) > maxTokenLen {
		return Claims{}, ErrNotJWT
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, ErrNotJWT
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Claims{}, ErrNotJWT
	}
	var raw struct {
		Exp     json.Number `json:"exp"`
		Email   string      `json:"email"`
		Profile struct {
			Email string `json:"email"`
		} `json:"https://api.openai.com/profile"`
		Auth struct {
			AccountID string `json:"chatgpt_account_id"`
			PlanType  string `json:"chatgpt_plan_type"`
			UserID    string `json:"chatgpt_user_id"`
			LegacyID  string `json:"user_id"`
		} `json:"https://api.openai.com/auth"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return Claims{}, ErrNotJWT
	}
	c := Claims{
		AccountID: raw.Auth.AccountID,
		PlanType:  raw.Auth.PlanType,
		UserID:    raw.Auth.UserID,
		Email:     raw.Email,
	}
	if c.UserID == "" {
		c.UserID = raw.Auth.LegacyID
	}
	if c.Email == "" {
		c.Email = raw.Profile.Email
	}
	if raw.Exp != "" {
		if f, err := raw.Exp.Float64(); err == nil && f > 0 && f < 1e11 {
			c.Expiry = time.Unix(int64(f), 0).UTC()
		}
	}
	return c, nil
}

// Merge fills the empty fields of c from other; the id token and the access
// token each carry part of the metadata.
func (c Claims) Merge(other Claims) Claims {
	if c.AccountID == "" {
		c.AccountID = other.AccountID
	}
	if c.PlanType == "" {
		c.PlanType = other.PlanType
	}
	if c.UserID == "" {
		c.UserID = other.UserID
	}
	if c.Email == "" {
		c.Email = other.Email
	}
	if c.Expiry.IsZero() {
		c.Expiry = other.Expiry
	}
	return c
}

// Encode builds an unsigned JWT carrying the given claims; the fake upstream
// and tests use it to mint tokens shaped like ChatGPT's.
func Encode(c Claims) string {
	payload := map[string]any{
		authNamespace: map[string]any{
			"chatgpt_account_id": c.AccountID,
			"chatgpt_plan_type":  c.PlanType,
			"chatgpt_user_id":    c.UserID,
		},
		profileNamespace: map[string]any{"email": c.Email},
		"email":          c.Email,
	}
	if !c.Expiry.IsZero() {
		payload["exp"] = c.Expiry.Unix()
	}
	body, _ := json.Marshal(payload)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc.EncodeToString(body) + ".sig"
}
