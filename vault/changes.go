package vault

import (
	"context"
	"errors"
)

// followChanges applies what other instances wrote (Store.Changes) to the
// in-memory caches until the channel closes or the vault closes.
func (v *Vault) followChanges(ch <-chan Change) {
	defer v.bg.Done()
	for {
		select {
		case c, ok := <-ch:
			if !ok {
				return
			}
			if err := v.applyChange(context.Background(), c); err != nil {
				v.logWarn("vault: applying a change from another instance failed", "kind", int(c.Kind), "user_id", c.UserID, "key", c.KeyID, "error", err)
			}
		case <-v.stop:
			return
		}
	}
}

// applyChange re-reads what c names and updates the caches to match.
func (v *Vault) applyChange(ctx context.Context, c Change) error {
	switch c.Kind {
	case ChangeUser:
		return v.reloadUser(ctx, c.UserID)
	case ChangeKey:
		if err := v.reloadKey(ctx, c.KeyID); err != nil {
			return err
		}
		// A usage reset elsewhere cleared the stored totals too.
		return v.reloadKeyUsage(ctx, []string{c.KeyID})
	case ChangeTokens:
		return v.reloadTokens(ctx, c.UserID)
	case ChangeAll:
		if err := v.reloadAll(ctx); err != nil {
			return err
		}
		return v.reloadKeyUsage(ctx, nil)
	case ChangeKeyUsage:
		return v.reloadKeyUsage(ctx, c.KeyIDs)
	}
	return nil
}

// reloadUser re-reads a user and their keys, or forgets a deleted one.
func (v *Vault) reloadUser(ctx context.Context, id string) error {
	u, err := v.store.GetUser(ctx, id)
	if errors.Is(err, ErrNotFound) {
		v.mu.Lock()
		v.forgetUserLocked(id)
		v.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	keys, err := v.store.ListKeys(ctx, id)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if old, ok := v.users[id]; ok && old.Email != u.Email {
		delete(v.emails, old.Email)
	}
	v.users[id] = u
	v.emails[u.Email] = id
	for _, rec := range keys {
		v.applyKeyLocked(rec)
	}
	return nil
}

// reloadKey re-reads one key: indexed if active, dropped otherwise.
func (v *Vault) reloadKey(ctx context.Context, id string) error {
	rec, err := v.store.GetKey(ctx, id)
	if errors.Is(err, ErrNotFound) {
		v.mu.Lock()
		v.unindexKeyLocked(id)
		v.mu.Unlock()
		return nil
	}
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.applyKeyLocked(rec)
	v.mu.Unlock()
	return nil
}

// applyKeyLocked makes the index agree with a stored key; v.mu is held.
func (v *Vault) applyKeyLocked(rec KeyRecord) {
	if rec.Disabled {
		v.unindexKeyLocked(rec.ID)
		return
	}
	if e, ok := v.keysByID[rec.ID]; ok {
		// Active here already: take its new policy or reset point, keep
		// its unwritten last-used time.
		v.refreshKeyLocked(e, rec)
		return
	}
	v.indexRecord(rec)
}

// unindexKeyLocked drops a key from the index; v.mu is held.
func (v *Vault) unindexKeyLocked(id string) {
	if e, ok := v.keysByID[id]; ok {
		delete(v.keysByHash, e.hash)
		delete(v.keysByID, id)
		v.usage.Forget(id)
	}
}

// reloadTokens re-reads the bundles of all of a user's accounts into the
// broker's cache, dropping accounts removed elsewhere.
func (v *Vault) reloadTokens(ctx context.Context, userID string) error {
	all, err := v.store.ListUserTokens(ctx, userID)
	if err != nil {
		return err
	}
	for _, st := range v.userStates(userID) {
		if _, ok := all[st.ref.ID]; !ok {
			v.dropAccountState(st.ref)
		}
	}
	for id, rec := range all {
		v.cacheRecord(AccountRef{UserID: userID, ID: id}, rec)
	}
	return nil
}

// reloadAll re-reads users, keys and tokens, for when notifications may
// have been missed.
func (v *Vault) reloadAll(ctx context.Context) error {
	users, err := v.store.ListUsers(ctx)
	if err != nil {
		return err
	}
	keys, err := v.store.ListAllKeys(ctx)
	if err != nil {
		return err
	}
	tokens, err := v.store.ListTokens(ctx)
	if err != nil {
		return err
	}
	v.mu.Lock()
	live := make(map[string]bool, len(users))
	for _, u := range users {
		live[u.ID] = true
	}
	for id := range v.users {
		if !live[id] {
			v.forgetUserLocked(id)
		}
	}
	for _, u := range users {
		if old, ok := v.users[u.ID]; ok && old.Email != u.Email {
			delete(v.emails, old.Email)
		}
		v.users[u.ID] = u
		v.emails[u.Email] = u.ID
	}
	active := make(map[string]bool, len(keys))
	for _, rec := range keys {
		if !rec.Disabled {
			active[rec.ID] = true
		}
		v.applyKeyLocked(rec)
	}
	for id := range v.keysByID {
		if !active[id] {
			v.unindexKeyLocked(id)
		}
	}
	v.mu.Unlock()
	v.tokMu.RLock()
	var gone []AccountRef
	for user, m := range v.tokens {
		for id := range m {
			if ref := (AccountRef{UserID: user, ID: id}); !hasRef(tokens, ref) {
				gone = append(gone, ref)
			}
		}
	}
	v.tokMu.RUnlock()
	for _, ref := range gone {
		v.dropAccountState(ref)
	}
	for ref, rec := range tokens {
		v.cacheRecord(ref, rec)
	}
	return nil
}

// hasRef reports whether m has ref.
func hasRef(m map[AccountRef]TokenRecord, ref AccountRef) bool {
	_, ok := m[ref]
	return ok
}
