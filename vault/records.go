package vault

import "time"

// The records a Store keeps. Their JSON form is what the bbolt engine
// writes; a server engine may map them to columns instead.

// KeyRecord is an API key as stored: its metadata and its HMAC.
type KeyRecord struct {
	Key
	// Hash is the HMAC-SHA-256 of the plaintext key under the pepper.
	Hash []byte `json:"hash"`
}

// Sealed is an AES-GCM ciphertext and the id of the key that sealed it.
// The Vault seals and opens; a Store keeps the bytes as they are.
type Sealed struct {
	KeyID      string `json:"key_id"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// TokenRecord is a token bundle as stored: metadata in clear, tokens
// sealed with the user id and the account id as associated data (so a
// record copied to another user or another account does not open).
type TokenRecord struct {
	Sealed
	TokenInfo
}

// SessionRecord is a dashboard session as stored.
type SessionRecord struct {
	UserID  string    `json:"user_id"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// AdminByClaim is set when the session began with an OpenID Connect
	// sign-in whose ID token carried the configured admin claim; false
	// (the zero value) for email-link sessions and for members.
	AdminByClaim bool `json:"admin_by_claim,omitempty"`
}

// LoginRecord is a single-use login token as stored.
type LoginRecord struct {
	Email   string    `json:"email"`
	Expires time.Time `json:"expires"`
}

// OAuthRecord is a pending OAuth flow as stored, the PKCE verifier sealed.
type OAuthRecord struct {
	UserID   string    `json:"user_id"`
	Verifier Sealed    `json:"verifier"`
	Expires  time.Time `json:"expires"`
}

// UsageDelta is what one batch of request logs adds to a user's day.
type UsageDelta struct {
	UserID string
	// DayUsage.Day is midnight UTC of the day the counts are added to.
	DayUsage
}

// LogQuery selects request-log records for Store.RecentLogs.
type LogQuery struct {
	// UserID limits the records to one user; empty means everyone.
	UserID string
	// Before keeps records strictly older than it; zero means no bound.
	Before time.Time
	// Limit is the most records returned; the Vault always sets it.
	Limit int
	// Filter keeps records whose status matches; Limit counts matches.
	Filter StatusFilter
}
