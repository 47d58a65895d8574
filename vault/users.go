package vault

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"
)

// User is a person allowed to use the proxy.
type User struct {
	ID      string    `json:"id"`
	Email   string    `json:"email"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// Disabled users keep their keys and linked account but can neither
	// call the API nor sign in to the dashboard until enabled again.
	Disabled bool `json:"disabled,omitempty"`
	// AccountPolicy picks which of the user's linked ChatGPT accounts
	// serves a request: PolicyPreferOrder (also when empty) or
	// PolicyMostRemaining. See routing.go.
	AccountPolicy string `json:"account_policy,omitempty"`
}

// maxNameLen bounds display names.
const maxNameLen = 200

// NormalizeEmail returns the form emails are stored and looked up in:
// trimmed and lower-case. It fails for strings that are not plausibly an
// email address.
func NormalizeEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndexByte(e, '@')
	if len(e) > 254 || at < 1 || at == len(e)-1 {
		return "", errors.New("vault: not a valid email address")
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", errors.New("vault: not a valid email address")
		}
	}
	return e, nil
}

// CreateUser adds a user with a new UUID. Emails are unique after
// normalisation; a duplicate fails with ErrEmailTaken, after which
// UserByEmail finds the user who has it, even one another instance has
// just created.
func (v *Vault) CreateUser(email, name string) (User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	name = strings.TrimSpace(name)
	if len(name) > maxNameLen {
		return User{}, fmt.Errorf("vault: name is longer than %d bytes", maxNameLen)
	}
	u := User{ID: uuid.NewString(), Email: e, Name: name, Created: v.now().UTC()}
	v.lockCaches()
	defer v.mu.Unlock()
	if _, ok := v.emails[e]; ok {
		return User{}, ErrEmailTaken
	}
	if err := v.store.CreateUser(context.Background(), u); err != nil {
		if errors.Is(err, ErrEmailTaken) {
			v.learnUserLocked(e)
		}
		return User{}, err
	}
	v.users[u.ID] = u
	v.emails[e] = u.ID
	return u, nil
}

// learnUserLocked caches the user another instance has just created with
// email (a sign-up there within the same moment), whose change
// notification has not arrived yet: the caller that lost the race then
// finds them with UserByEmail instead of failing. The notification, when
// it comes, reloads them with their keys. v.mu must be held.
func (v *Vault) learnUserLocked(email string) {
	if w, err := v.store.UserByEmail(context.Background(), email); err == nil {
		v.users[w.ID] = w
		v.emails[w.Email] = w.ID
	}
}

// User returns the user with the given id, or ErrNotFound.
func (v *Vault) User(id string) (User, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	u, ok := v.users[id]
	if !ok {
		return User{}, ErrNotFound
	}
	return u, nil
}

// UserByEmail returns the user with the given email (any case), or
// ErrNotFound.
func (v *Vault) UserByEmail(email string) (User, error) {
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, ErrNotFound
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	id, ok := v.emails[e]
	if !ok {
		return User{}, ErrNotFound
	}
	return v.users[id], nil
}

// ListUsers returns all users sorted by email.
func (v *Vault) ListUsers() ([]User, error) {
	v.mu.RLock()
	out := make([]User, 0, len(v.users))
	for _, u := range v.users {
		out = append(out, u)
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Email < out[j].Email })
	return out, nil
}

// DeleteUser removes a user with their API keys, tokens, dashboard sessions
// and OAuth sessions. Request logs and usage roll-ups stay as history and
// age out with the log retention.
func (v *Vault) DeleteUser(id string) error {
	v.lockCaches()
	defer v.mu.Unlock()
	if _, ok := v.users[id]; !ok {
		return ErrNotFound
	}
	if err := v.store.DeleteUser(context.Background(), id); err != nil {
		return err
	}
	v.forgetUserLocked(id)
	return nil
}

// forgetUserLocked drops a deleted user and everything of theirs from
// memory; v.mu must be held.
func (v *Vault) forgetUserLocked(id string) {
	if u, ok := v.users[id]; ok {
		delete(v.emails, u.Email)
	}
	delete(v.users, id)
	for kid, e := range v.keysByID {
		if e.key.UserID == id {
			delete(v.keysByHash, e.hash)
			delete(v.keysByID, kid)
		}
	}
	v.dropTokenState(id)
	v.quotas.drop(id)
}

// SetUserDisabled disables or re-enables a user. It takes effect at once:
// the next VerifyKey or SessionUser already sees it.
func (v *Vault) SetUserDisabled(id string, disabled bool) (User, error) {
	v.lockCaches()
	defer v.mu.Unlock()
	u, ok := v.users[id]
	if !ok {
		return User{}, ErrNotFound
	}
	u.Disabled = disabled
	if err := v.store.UpdateUser(context.Background(), u); err != nil {
		return User{}, err
	}
	v.users[id] = u
	return u, nil
}

// loadUsers fills the in-memory user maps.
func (v *Vault) loadUsers(ctx context.Context) error {
	users, err := v.store.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		v.users[u.ID] = u
		v.emails[u.Email] = u.ID
	}
	return nil
}
