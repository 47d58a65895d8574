package vault

import "testing"

// first is the user's first linked account (the only one, in tests of the
// single-account API).
func first(t testing.TB, v *Vault, userID string) AccountRef {
	t.Helper()
	accts, err := v.Accounts(userID)
	if err != nil || len(accts) == 0 {
		t.Fatalf("user %s has no account: %v", userID, err)
	}
	return AccountRef{UserID: userID, ID: accts[0].ID}
}
