package dashboard

import (
	"sync"
	"time"
)

// One-time form tokens and server-side flashes make the key form safe to
// reload and to double click (post/redirect/get):
//
//   - the form carries a one-time token; the first POST with it does the
//     work, a second one (a double click, a re-sent form) does nothing and
//     is sent where the first went;
//   - the result (a new key, shown once) waits in memory under a random id
//     for flashTTL; the redirect's GET takes it, so a reload of the page
//     cannot show the key again or make another one.
//
// Both live in memory: a restart forgets them, and a form opened before it
// is refused with a message that nothing happened.

const (
	formTokenTTL      = time.Hour
	formTokensPerUser = 20
	flashTTL          = 2 * time.Minute
	replayWait        = 30 * time.Second
)

// formEntry is one issued form token.
type formEntry struct {
	user    string
	expires time.Time
	claimed bool
	done    chan struct{} // closed when the first use finished
	result  string        // where the first use went (a URL)
}

// formTokens holds the issued one-time form tokens.
type formTokens struct {
	mu sync.Mutex
	m  map[string]*formEntry
}

// issue makes a token for one form of userID.
func (f *formTokens) issue(userID string, now time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string]*formEntry{}
	}
	// Forget expired tokens, and the oldest unused ones of this user past
	// the cap, so an open tab per reload costs bounded memory.
	var oldest string
	n := 0
	for tok, e := range f.m {
		if now.After(e.expires) {
			delete(f.m, tok)
			continue
		}
		if e.user == userID && !e.claimed {
			n++
			if oldest == "" || e.expires.Before(f.m[oldest].expires) {
				oldest = tok
			}
		}
	}
	if n >= formTokensPerUser && oldest != "" {
		delete(f.m, oldest)
	}
	tok := randomToken()
	f.m[tok] = &formEntry{user: userID, expires: now.Add(formTokenTTL), done: make(chan struct{})}
	return tok
}

// use runs do for the first POST with tok and returns where it went. A
// later POST with the same token waits for the first to finish and gets
// the same answer with replay set; an unknown, expired or foreign token
// gets ok false and do does not run.
func (f *formTokens) use(tok, userID string, now time.Time, do func() string) (dest string, replay, ok bool) {
	f.mu.Lock()
	e, found := f.m[tok]
	if !found || e.user != userID || now.After(e.expires) {
		f.mu.Unlock()
		return "", false, false
	}
	if e.claimed {
		f.mu.Unlock()
		select {
		case <-e.done:
			return e.result, true, true
		case <-time.After(replayWait):
			return "", true, false
		}
	}
	e.claimed = true
	f.mu.Unlock()
	res := do()
	f.mu.Lock()
	e.result = res
	f.mu.Unlock()
	close(e.done)
	return res, false, true
}

// Bounds of the flash store. Every POST /chatgpt/link leaves a flow here
// for OAuthTTL, so without a cap one signed-in user could grow memory at
// will: each user keeps linkFlowsPerUser pending flows (clicking "Link"
// again drops the oldest, the newest always works), and the store as a
// whole keeps at most maxFlashes values (visitors' "check your email"
// pages, which the sign-in rate limits bound too, included).
const (
	linkFlowsPerUser = 5
	maxFlashes       = 1 << 14
	flashSweepEvery  = time.Minute
)

// flashEntry is a result waiting for the GET after a redirect.
type flashEntry struct {
	owner   string
	kind    string // the kind a per-owner cap counts; "" for none
	expires time.Time
	value   any
}

// flashStore keeps results for one GET each.
type flashStore struct {
	mu sync.Mutex
	m  map[string]flashEntry
	// capped lists, oldest first, the ids of each owner's values of a
	// capped kind (owner + "\x00" + kind).
	capped    map[string][]string
	nextSweep time.Time
}

// put stores v for owner and returns its id.
func (s *flashStore) put(owner string, v any, now time.Time, ttl time.Duration) string {
	id, _ := s.putCapped(owner, "", 0, v, now, ttl)
	return id
}

// putCapped stores v for owner like put and keeps at most perOwner values
// of kind for that owner (no cap when perOwner is 0 or kind empty). It
// returns the values it dropped to make room, oldest first, so the caller
// can end what they stood for.
func (s *flashStore) putCapped(owner, kind string, perOwner int, v any, now time.Time, ttl time.Duration) (string, []any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]flashEntry{}
		s.capped = map[string][]string{}
	}
	// Expired values go in a sweep at most every flashSweepEvery, or when
	// the store is full, so a put does not cost a scan of every user's.
	if now.After(s.nextSweep) || len(s.m) >= maxFlashes {
		for id, e := range s.m {
			if now.After(e.expires) {
				s.deleteLocked(id)
			}
		}
		s.nextSweep = now.Add(flashSweepEvery)
	}
	var dropped []any
	if kind == "" {
		perOwner = 0
	}
	ck := owner + "\x00" + kind
	if perOwner > 0 {
		for ids := s.capped[ck]; len(ids) >= perOwner; ids = s.capped[ck] {
			dropped = append(dropped, s.m[ids[0]].value)
			s.deleteLocked(ids[0])
		}
	}
	if len(s.m) >= maxFlashes {
		// Still full of live values: the one that expires first goes.
		var first string
		for id, e := range s.m {
			if first == "" || e.expires.Before(s.m[first].expires) {
				first = id
			}
		}
		s.deleteLocked(first)
	}
	id := randomToken()
	e := flashEntry{owner: owner, expires: now.Add(ttl), value: v}
	if perOwner > 0 {
		e.kind = kind
		s.capped[ck] = append(s.capped[ck], id)
	}
	s.m[id] = e
	return id, dropped
}

// deleteLocked forgets the value under id, and its place in its owner's
// cap.
func (s *flashStore) deleteLocked(id string) {
	e, ok := s.m[id]
	if !ok {
		return
	}
	delete(s.m, id)
	if e.kind == "" {
		return
	}
	ck := e.owner + "\x00" + e.kind
	ids := s.capped[ck]
	for i, x := range ids {
		if x == id {
			ids = append(ids[:i:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(s.capped, ck)
	} else {
		s.capped[ck] = ids
	}
}

// take returns and forgets the value under id if owner stored it.
func (s *flashStore) take(id, owner string, now time.Time) (any, bool) {
	return s.read(id, owner, now, true)
}

// peek returns the value under id without forgetting it.
func (s *flashStore) peek(id, owner string, now time.Time) (any, bool) {
	return s.read(id, owner, now, false)
}

func (s *flashStore) read(id, owner string, now time.Time, del bool) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[id]
	if !ok || e.owner != owner {
		return nil, false
	}
	if now.After(e.expires) {
		s.deleteLocked(id)
		return nil, false
	}
	if del {
		s.deleteLocked(id)
	}
	return e.value, true
}
