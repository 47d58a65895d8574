package vault

import (
	"fmt"
	"sort"
	"sync"
	"time"
)

// RouteHint is what a request tells Route about itself.
type RouteHint struct {
	// Pin is the account the API key is pinned to (keypolicy.Policy's
	// Account); only that account is used then, without failover.
	Pin string
	// Affinity names the conversation (the request's prompt_cache_key):
	// while the account that served it last is usable, it serves it again,
	// so the upstream's prompt cache keeps working.
	Affinity string
}

// Route is the accounts to try for one request, best first.
type Route struct {
	Accounts []string
}

// ExhaustedError is ErrAccountsExhausted with the time the soonest of the
// user's exhausted accounts resets.
type ExhaustedError struct {
	Until time.Time
}

// Error says that every account is at its limit and when one resets.
func (e *ExhaustedError) Error() string {
	if e.Until.IsZero() {
		return ErrAccountsExhausted.Error()
	}
	return fmt.Sprintf("%s; the soonest resets at %s", ErrAccountsExhausted, e.Until.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrAccountsExhausted) hold.
func (e *ExhaustedError) Is(target error) bool { return target == ErrAccountsExhausted }

// defaultExhaustion is how long an account counts as exhausted when the
// upstream's usage-limit answer said nothing about its reset.
const defaultExhaustion = time.Minute

// Route picks the user's accounts to try for a request, in order: usable
// ones only (linked, not needing a re-link, not known to be exhausted),
// the conversation's account first, then by the user's AccountPolicy.
// With a pin, only the pinned account. When no account is usable, it
// fails with an *ExhaustedError if some account is exhausted; otherwise
// it returns the accounts that need a re-link, so that the caller gets
// their error from AccountToken. Errors: ErrNotLinked, ErrNoSuchAccount
// (a pin to an account the user does not have), *ExhaustedError.
//
// It reads memory only: cheap enough for every request.
func (v *Vault) Route(userID string, h RouteHint) (Route, error) {
	states := v.userStates(userID)
	if len(states) == 0 {
		return Route{}, ErrNotLinked
	}
	now := v.now()
	if h.Pin != "" {
		for _, st := range states {
			if st.ref.ID == h.Pin {
				if until := st.exhaustedUntil(now); !until.IsZero() {
					return Route{}, &ExhaustedError{Until: until}
				}
				return Route{Accounts: []string{h.Pin}}, nil
			}
		}
		return Route{}, fmt.Errorf("%w: the API key is pinned to account %q, which is not linked any more", ErrNoSuchAccount, h.Pin)
	}
	type cand struct {
		st     *tokenState
		cb     *cachedBundle
		remain float64
	}
	var usable, broken []cand
	var soonest time.Time
	for _, st := range states {
		cb := st.cur.Load()
		if cb == nil || cb.b.RelinkNeeded {
			broken = append(broken, cand{st: st, cb: cb})
			continue
		}
		if until := st.exhaustedUntil(now); !until.IsZero() {
			if soonest.IsZero() || until.Before(soonest) {
				soonest = until
			}
			continue
		}
		usable = append(usable, cand{st: st, cb: cb})
	}
	if len(usable) == 0 {
		if !soonest.IsZero() {
			return Route{}, &ExhaustedError{Until: soonest}
		}
		sort.Slice(broken, func(i, j int) bool { return orderLess(broken[i].st, broken[i].cb, broken[j].st, broken[j].cb) })
		r := Route{Accounts: make([]string, len(broken))}
		for i, c := range broken {
			r.Accounts[i] = c.st.ref.ID
		}
		return r, nil
	}
	mostRemaining := v.accountPolicy(userID) == PolicyMostRemaining
	if mostRemaining {
		for i := range usable {
			usable[i].remain = v.remaining(usable[i].st.ref, now)
		}
	}
	sort.Slice(usable, func(i, j int) bool {
		a, b := usable[i], usable[j]
		if mostRemaining && a.remain != b.remain {
			return a.remain > b.remain
		}
		return orderLess(a.st, a.cb, b.st, b.cb)
	})
	r := Route{Accounts: make([]string, len(usable))}
	for i, c := range usable {
		r.Accounts[i] = c.st.ref.ID
	}
	if h.Affinity != "" {
		if id, ok := v.affinity.get(userID + "\x00" + h.Affinity); ok {
			for i, a := range r.Accounts {
				if a == id {
					copy(r.Accounts[1:i+1], r.Accounts[:i])
					r.Accounts[0] = id
					break
				}
			}
		}
	}
	return r, nil
}

// AccountCount is how many accounts the user has linked (from memory).
func (v *Vault) AccountCount(userID string) int {
	v.tokMu.RLock()
	defer v.tokMu.RUnlock()
	return len(v.tokens[userID])
}

// orderLess is the user's order of preference between two accounts.
func orderLess(a *tokenState, acb *cachedBundle, b *tokenState, bcb *cachedBundle) bool {
	var ai, bi TokenInfo
	if acb != nil {
		ai = TokenInfo{Position: acb.b.Position, Linked: acb.b.Linked}
	}
	if bcb != nil {
		bi = TokenInfo{Position: bcb.b.Position, Linked: bcb.b.Linked}
	}
	return less(ai, a.ref.ID, bi, b.ref.ID)
}

// remaining is the percentage left in the account's tighter window, from
// its latest snapshot; 100 when none is known (an unused account has all
// of its quota). A window whose reset time passed counts as unused.
func (v *Vault) remaining(ref AccountRef, now time.Time) float64 {
	q, ok := v.quotas.get(ref)
	if !ok {
		return 100
	}
	used := 0.0
	for _, w := range []*QuotaWindow{q.Primary, q.Secondary} {
		if w == nil {
			continue
		}
		reset := w.ResetAt
		if reset.IsZero() && w.ResetAfter > 0 {
			reset = q.Seen.Add(w.ResetAfter)
		}
		if !reset.IsZero() && !now.Before(reset) {
			continue
		}
		used = max(used, w.UsedPercent)
	}
	return max(0, 100-used)
}

// accountPolicy is the user's routing policy.
func (v *Vault) accountPolicy(userID string) string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.users[userID].AccountPolicy
}

// preferred is the account a request without hints would use first, or
// the first in the user's order when none is usable.
func (v *Vault) preferred(userID string) (AccountRef, bool) {
	if r, err := v.Route(userID, RouteHint{}); err == nil && len(r.Accounts) > 0 {
		return AccountRef{UserID: userID, ID: r.Accounts[0]}, true
	}
	states := v.userStates(userID)
	if len(states) == 0 {
		return AccountRef{}, false
	}
	sort.Slice(states, func(i, j int) bool {
		return orderLess(states[i], states[i].cur.Load(), states[j], states[j].cur.Load())
	})
	return states[0].ref, true
}

// MarkExhausted records that the upstream answered usage_limit_reached for
// the account and that it resets at until (a minute from now when zero).
// From then on Route skips the account and AccountToken refuses it until
// that time, so no request is sent to it in vain. The mark is kept in
// memory only.
func (v *Vault) MarkExhausted(userID, accountID string, until time.Time) {
	st := v.tokenStateOf(AccountRef{UserID: userID, ID: accountID})
	if st == nil {
		return
	}
	if !until.After(v.now()) {
		until = v.now().Add(defaultExhaustion)
	}
	n := until.UnixNano()
	for {
		old := st.exhausted.Load()
		if old >= n || st.exhausted.CompareAndSwap(old, n) {
			return
		}
	}
}

// exhaustedUntil is when the account's usage limit resets, if that is
// after now; zero otherwise.
func (st *tokenState) exhaustedUntil(now time.Time) time.Time {
	n := st.exhausted.Load()
	if n == 0 || now.UnixNano() >= n {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// NoteServed records that the account served the conversation, so that
// Route sends its next turns there while the account is usable.
func (v *Vault) NoteServed(userID, conversation, accountID string) {
	if conversation == "" || accountID == "" {
		return
	}
	v.affinity.put(userID+"\x00"+conversation, accountID)
}

// maxAffinity bounds the conversation → account map: past it, the oldest
// entries are forgotten (those conversations then follow the policy).
const maxAffinity = 50_000

// affinityMap is a bounded map with first-in-first-out eviction. The zero
// value is ready to use.
type affinityMap struct {
	mu   sync.Mutex
	m    map[string]string
	ring []string // keys in insertion order, a circular buffer once full
	next int
}

func (a *affinityMap) get(k string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.m[k]
	return v, ok
}

func (a *affinityMap) put(k, v string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string]string{}
	}
	if _, ok := a.m[k]; ok {
		a.m[k] = v
		return
	}
	if len(a.ring) < maxAffinity {
		a.ring = append(a.ring, k)
	} else {
		delete(a.m, a.ring[a.next])
		a.ring[a.next] = k
		a.next = (a.next + 1) % maxAffinity
	}
	a.m[k] = v
}
