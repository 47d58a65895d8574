package vault

import "errors"

// ErrNotFound reports a user, key, or other record that does not exist.
var ErrNotFound = errors.New("vault: not found")

// ErrEmailTaken reports a CreateUser for an email that already has a user.
var ErrEmailTaken = errors.New("vault: a user with this email already exists")

// ErrKeyInvalid reports an API key that is unknown or revoked. Both cases
// share this error so callers cannot tell them apart.
var ErrKeyInvalid = errors.New("vault: invalid API key")

// ErrUserDisabled reports a valid key or session of a user an operator
// disabled.
var ErrUserDisabled = errors.New("vault: user is disabled")

// ErrNotLinked reports a user who has no ChatGPT tokens stored.
var ErrNotLinked = errors.New("vault: no ChatGPT account is linked for this user; link one in the dashboard")

// ErrRelinkNeeded reports a user whose refresh token was rejected for good
// (reused, expired or revoked). No refresh is attempted until new tokens are
// stored with PutTokens.
var ErrRelinkNeeded = errors.New("vault: the ChatGPT login has expired; the user must re-link their ChatGPT account in the dashboard")

// ErrRefreshUnavailable reports a refresh that failed for a reason that may
// pass (token endpoint down, network error) after all retries.
var ErrRefreshUnavailable = errors.New("vault: could not refresh the ChatGPT token right now; try again shortly")

// ErrTokenUndecryptable reports a stored token bundle that none of the
// configured encryption keys can open (wrong key, tampering, or a bundle
// that belongs to another user).
var ErrTokenUndecryptable = errors.New("vault: stored ChatGPT tokens cannot be decrypted with the configured encryption keys")

// ErrInvalidToken reports a dashboard session, login token or OAuth state
// that is unknown, already used or expired.
var ErrInvalidToken = errors.New("vault: unknown, used or expired token")

// ErrLocked reports a bbolt vault file that another process (a running
// Caddy?) or another Open in this process holds: bbolt takes an exclusive
// file lock, so a second opener waits and then gives up.
var ErrLocked = errors.New("vault: the file is locked")

// ErrClosed reports a call on a closed Vault.
var ErrClosed = errors.New("vault: closed")

// ErrSchemaTooNew reports a file written by a newer version of the proxy.
var ErrSchemaTooNew = errors.New("vault: the database was written by a newer version of the proxy")

// ErrDuplicate reports a record whose id or unique value (an API key's
// hash) another record already has.
var ErrDuplicate = errors.New("vault: a record with this id or key already exists")

// ErrUnavailable reports a database that cannot be reached right now (a
// server engine whose connection failed or timed out). The call may work
// again later without a restart; the HTTP layer answers 503.
var ErrUnavailable = errors.New("vault: the database is unavailable")

// ErrAccountsExhausted reports a user all of whose usable ChatGPT accounts
// are known to be at their usage limit; the error is an *ExhaustedError
// that says when the soonest one resets.
var ErrAccountsExhausted = errors.New("vault: every linked ChatGPT account has reached its usage limit")

// ErrNoSuchAccount reports a linked-account id the user does not have.
var ErrNoSuchAccount = errors.New("vault: no linked ChatGPT account with this id")
