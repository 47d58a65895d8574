package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestUseCases runs one operator's session on both Services: users, keys
// with policies, accounts and a backup, checking the vault after each.
func TestUseCases(t *testing.T) {
	ctx := context.Background()
	for name, open := range impls(t) {
		t.Run(name, func(t *testing.T) {
			s, v := open(t)

			created, err := s.UpsertUser(ctx, UserRequest{Email: "Ada@Example.com", Name: "Ada", AuthJSON: authJSON(t, "ada@example.com", "plus")})
			if err != nil || !created.Created || !created.TokensImported || created.User.Email != "ada@example.com" ||
				created.User.ChatGPT == nil || created.User.ChatGPT.PlanType != "plus" {
				t.Fatalf("create: %v %+v", err, created)
			}
			again, err := s.UpsertUser(ctx, UserRequest{Email: "ada@example.com", Name: "Ada L.", AuthJSON: authJSON(t, "other@example.com", "pro")})
			if err != nil || again.Created || again.User.ID != created.User.ID || len(again.Warnings) != 2 {
				t.Fatalf("update: %v %+v", err, again)
			}
			if b, _ := json.Marshal(again); bytes.Contains(b, []byte(testRefreshToken)) {
				t.Fatal("the result shows the refresh token")
			}

			k, err := createTestKey(ctx, s, "ada@example.com", map[string]string{"rpm": "5", "models": "GPT-5.5-codex"})
			if err != nil || k.Policy.RPM != 5 || strings.Join(k.Policy.Models, ",") != "gpt-5.5" {
				t.Fatalf("create key: %v %+v", err, k.Key)
			}
			if _, u, err := v.VerifyKey(k.Plaintext); err != nil || u.ID != created.User.ID {
				t.Fatalf("the new key does not verify: %v", err)
			}
			keys, err := s.ListKeys(ctx, "ada@example.com")
			if err != nil || len(keys.Keys) != 1 || keys.Keys[0].Usage == nil || keys.Keys[0].Usage.RequestsPerMinute.Limit != 5 {
				t.Fatalf("keys: %v %+v", err, keys)
			}
			up, err := s.UpdateKeyPolicy(ctx, k.ID, KeyUpdateRequest{Email: "ada@example.com", Policy: map[string]string{"tokens-per-day": "1000"}})
			if err != nil || up.Key.Policy.RPM != 5 || up.Key.Policy.TokensPerDay != 1000 {
				t.Fatalf("update policy: %v %+v", err, up)
			}
			if up, err = s.ResetKeyUsage(ctx, "ada@example.com", k.ID); err != nil || up.Key.UsageReset.IsZero() {
				t.Fatalf("reset usage: %v %+v", err, up)
			}

			if st, err := s.SetUserEnabled(ctx, "ada@example.com", false); err != nil || !st.User.Disabled {
				t.Fatalf("disable: %v %+v", err, st)
			}
			if _, _, err := v.VerifyKey(k.Plaintext); !errors.Is(err, vault.ErrUserDisabled) {
				t.Fatalf("key of a disabled user: %v", err)
			}
			if st, err := s.SetUserEnabled(ctx, "ada@example.com", true); err != nil || st.User.Disabled {
				t.Fatalf("enable: %v %+v", err, st)
			}
			users, err := s.ListUsers(ctx)
			if err != nil || len(users.Users) != 1 || users.Users[0].ActiveKeys != 1 {
				t.Fatalf("users: %v %+v", err, users)
			}
			if one, err := s.GetUser(ctx, "ada@example.com"); err != nil || one.ID != created.User.ID {
				t.Fatalf("user: %v %+v", err, one)
			}

			second, err := s.AddAccount(ctx, AccountAddRequest{Email: "ada@example.com", AuthJSON: authJSON(t, "ada-work@example.com", "team"), Label: "work"})
			if err != nil || second.Position != 2 || second.Label != "work" {
				t.Fatalf("add account: %v %+v", err, second)
			}
			accts, err := s.ListAccounts(ctx, "ada@example.com")
			if err != nil || len(accts.Accounts) != 2 || accts.Policy != vault.PolicyPreferOrder {
				t.Fatalf("accounts: %v %+v", err, accts)
			}
			first := accts.Accounts[0].ID
			if accts, err = s.OrderAccounts(ctx, AccountOrderRequest{Email: "ada@example.com", IDs: []string{second.ID, first}}); err != nil || accts.Accounts[0].ID != second.ID {
				t.Fatalf("order: %v %+v", err, accts)
			}
			if accts, err = s.SetAccountPolicy(ctx, AccountPolicyRequest{Email: "ada@example.com", Policy: vault.PolicyMostRemaining}); err != nil || accts.Policy != vault.PolicyMostRemaining {
				t.Fatalf("policy: %v %+v", err, accts)
			}
			if up, err = s.UpdateKeyPolicy(ctx, k.ID, KeyUpdateRequest{Email: "ada@example.com", Policy: map[string]string{"account": first}}); err != nil || up.Key.Policy.Account != first {
				t.Fatalf("pin: %v %+v", err, up)
			}
			if accts, err = s.RemoveAccount(ctx, "ada@example.com", second.ID); err != nil || len(accts.Accounts) != 1 {
				t.Fatalf("remove: %v %+v", err, accts)
			}

			var buf bytes.Buffer
			if n, err := s.Backup(ctx, &buf); err != nil || n == 0 || int64(buf.Len()) != n {
				t.Fatalf("backup: %d %v (%d bytes)", n, err, buf.Len())
			}

			rev, err := s.RevokeKey(ctx, "ada@example.com", k.ID)
			if err != nil || !rev.Revoked.Disabled {
				t.Fatalf("revoke: %v %+v", err, rev)
			}
			if _, err := s.RevokeKey(ctx, "ada@example.com", k.ID); err != nil {
				t.Fatalf("revoking twice: %v", err)
			}
			if _, _, err := v.VerifyKey(k.Plaintext); !errors.Is(err, vault.ErrKeyInvalid) {
				t.Fatalf("revoked key verifies: %v", err)
			}
		})
	}
}

// createTestKey creates a key with a policy for email.
func createTestKey(ctx context.Context, s Service, email string, policy map[string]string) (CreatedKey, error) {
	return s.CreateKey(ctx, KeyRequest{Email: email, Label: "test", Policy: policy})
}

// TestUseCaseErrors checks each refusal has the same status and message
// on both Services, and that none leaves anything behind.
func TestUseCaseErrors(t *testing.T) {
	ctx := context.Background()
	for name, open := range impls(t) {
		t.Run(name, func(t *testing.T) {
			s, v := open(t)
			u, err := v.CreateUser("ada@example.com", "")
			if err != nil {
				t.Fatal(err)
			}
			_, k, err := v.CreateKey(u.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name   string
				call   func() error
				status int
				msg    string
			}{
				{"bad email", func() error { _, err := s.UpsertUser(ctx, UserRequest{Email: "nope"}); return err }, 400, `"nope" is not a valid email address`},
				{"api-key auth.json", func() error {
					_, err := s.UpsertUser(ctx, UserRequest{Email: "eve@example.com", AuthJSON: []byte(`{"OPENAI_API_KEY":"sk-x","tokens":null}`)})
					return err
				}, 400, "OpenAI API key"},
				{"unknown user", func() error { _, err := s.ListKeys(ctx, "ghost@example.com"); return err }, 404, "no user with email ghost@example.com"},
				{"key for unknown user", func() error { _, err := s.CreateKey(ctx, KeyRequest{Email: "ghost@example.com"}); return err }, 404, "no user"},
				{"bad policy", func() error {
					_, err := createTestKey(ctx, s, "ada@example.com", map[string]string{"rpm": "-5"})
					return err
				}, 400, "rpm"},
				{"unknown policy field", func() error {
					_, err := s.UpdateKeyPolicy(ctx, k.ID, KeyUpdateRequest{Email: "ada@example.com", Policy: map[string]string{"colour": "red"}})
					return err
				}, 400, "colour"},
				{"pin to an unknown account", func() error {
					_, err := s.UpdateKeyPolicy(ctx, k.ID, KeyUpdateRequest{Email: "ada@example.com", Policy: map[string]string{"account": "nope"}})
					return err
				}, 400, "no linked ChatGPT account"},
				{"unknown key", func() error {
					_, err := s.UpdateKeyPolicy(ctx, "nope", KeyUpdateRequest{Email: "ada@example.com", Policy: map[string]string{"rpm": "1"}})
					return err
				}, 404, "ada@example.com has no active key with id nope"},
				{"revoke unknown key", func() error { _, err := s.RevokeKey(ctx, "ada@example.com", "nope"); return err }, 404, "has no key with id nope"},
				{"reset unknown key", func() error { _, err := s.ResetKeyUsage(ctx, "ada@example.com", "nope"); return err }, 404, "has no active key"},
				{"disable unknown user", func() error { _, err := s.SetUserEnabled(ctx, "ghost@example.com", false); return err }, 404, "no user"},
				{"unknown account policy", func() error {
					_, err := s.SetAccountPolicy(ctx, AccountPolicyRequest{Email: "ada@example.com", Policy: "round-robin"})
					return err
				}, 400, `unknown policy "round-robin"`},
				{"remove unknown account", func() error { _, err := s.RemoveAccount(ctx, "ada@example.com", "nope"); return err }, 404, ""},
				{"order unknown account", func() error {
					_, err := s.OrderAccounts(ctx, AccountOrderRequest{Email: "ada@example.com", IDs: []string{"nope"}})
					return err
				}, 404, ""},
			} {
				t.Run(tc.name, func(t *testing.T) {
					err := tc.call()
					if err == nil || StatusOf(err) != tc.status || !strings.Contains(err.Error(), tc.msg) {
						t.Fatalf("err %v (status %d), want %d containing %q", err, StatusOf(err), tc.status, tc.msg)
					}
				})
			}
			if users, _ := v.ListUsers(); len(users) != 1 {
				t.Fatalf("failed calls left users behind: %+v", users)
			}
			if keys, _ := v.ListKeys(u.ID); len(keys) != 1 || keys[0].Policy.RPM != 0 {
				t.Fatalf("failed calls changed the keys: %+v", keys)
			}
		})
	}
}

func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{nil, http.StatusOK},
		{&Error{Status: http.StatusTeapot, Err: vault.ErrNotFound}, http.StatusTeapot},
		{vault.ErrNotFound, http.StatusNotFound},
		{vault.ErrNoSuchAccount, http.StatusNotFound},
		{vault.ErrEmailTaken, http.StatusConflict},
		{vault.ErrClosed, http.StatusServiceUnavailable},
		{vault.ErrUnavailable, http.StatusServiceUnavailable},
		{errors.New("boom"), http.StatusInternalServerError},
	} {
		if got := StatusOf(tc.err); got != tc.want {
			t.Errorf("StatusOf(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
	e := errorf(http.StatusNotFound, "user: %w", vault.ErrNotFound)
	if !errors.Is(e, vault.ErrNotFound) {
		t.Fatal("an *Error hides its cause")
	}
}
