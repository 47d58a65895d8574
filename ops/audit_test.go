package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/bolt"
)

// actions lists entries as "action outcome" lines, oldest first.
func actions(es []vault.AuditEntry) string {
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, string(es[i].Action)+" "+es[i].Outcome)
	}
	return strings.Join(out, "\n")
}

// TestAuditRecordsOperatorActions runs every operator action, and a few
// refusals, on both Services and reads the audit log back: each with its
// actor (the CLI with its OS user; remotely, through the admin API, as
// the CLI says with its headers), its target and no secret.
func TestAuditRecordsOperatorActions(t *testing.T) {
	ctx := WithActor(context.Background(), Actor{Via: ViaCLI, OSUser: "alice"})
	for name, open := range impls(t) {
		t.Run(name, func(t *testing.T) {
			s, _ := open(t)
			res, err := s.UpsertUser(ctx, UserRequest{Email: "ada@example.com", AuthJSON: authJSON(t, "ada@example.com", "plus")})
			if err != nil {
				t.Fatal(err)
			}
			u := res.User.User
			k, err := createTestKey(ctx, s, "ada@example.com", map[string]string{"rpm": "5"})
			if err != nil {
				t.Fatal(err)
			}
			steps := []func() error{
				func() error {
					_, err := s.UpdateKeyPolicy(ctx, k.ID, KeyUpdateRequest{Email: "ada@example.com", Policy: map[string]string{"tokens-per-day": "1000"}})
					return err
				},
				func() error { _, err := s.ResetKeyUsage(ctx, "ada@example.com", k.ID); return err },
				func() error { _, err := s.RevokeKey(ctx, "ada@example.com", k.ID); return err },
				func() error { _, err := s.SetUserEnabled(ctx, "ada@example.com", false); return err },
				func() error { _, err := s.SetUserEnabled(ctx, "ada@example.com", true); return err },
				func() error {
					_, err := s.SetAccountPolicy(ctx, AccountPolicyRequest{Email: "ada@example.com", Policy: vault.PolicyMostRemaining})
					return err
				},
				func() error {
					_, err := s.SetSignup(ctx, SignupRequest{Mode: "domains", Domains: []string{"example.com"}})
					return err
				},
				func() error { _, err := s.SetSignup(ctx, SignupRequest{Clear: true}); return err },
			}
			for i, step := range steps {
				if err := step(); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
			}
			// Refused, each for its own reason.
			if _, err := s.RevokeKey(ctx, "ada@example.com", "k_nope"); StatusOf(err) != http.StatusNotFound {
				t.Fatalf("revoking an unknown key: %v", err)
			}
			if _, err := s.SetUserEnabled(ctx, "nobody@example.com", false); StatusOf(err) != http.StatusNotFound {
				t.Fatalf("disabling an unknown user: %v", err)
			}
			if _, err := s.RemoveAccount(ctx, "ada@example.com", "acct-nope"); StatusOf(err) != http.StatusNotFound {
				t.Fatalf("unlinking an unknown account: %v", err)
			}

			all, err := s.ListAudit(ctx, AuditRequest{})
			if err != nil {
				t.Fatal(err)
			}
			want := strings.Join([]string{"user.created ok", "account.linked ok", "key.created ok", "key.policy-changed ok",
				"key.usage-reset ok", "key.revoked ok", "user.disabled ok", "user.enabled ok", "account.policy-changed ok",
				"signup-policy.changed ok", "signup-policy.changed ok",
				"key.revoked refused", "user.disabled refused", "account.unlinked refused"}, "\n")
			if got := actions(all.Entries); got != want {
				t.Fatalf("audit log:\n%s\nwant:\n%s", got, want)
			}
			wantActor := vault.AuditActor{Kind: vault.ActorCLI, OSUser: "alice"}
			if name == "remote" {
				wantActor.Via = vault.ActorAdminAPI
			}
			for _, e := range all.Entries {
				if e.Actor != wantActor {
					t.Fatalf("%s: actor %+v, want %+v", e.Action, e.Actor, wantActor)
				}
				if name == "remote" != strings.HasPrefix(e.Source, "127.0.0.1:") {
					t.Fatalf("%s: source %q", e.Action, e.Source)
				}
			}
			if e := all.Entries[4]; e.Detail != "domains example.com" {
				t.Fatalf("the sign-up change's detail: %q", e.Detail)
			}
			revoked := all.Entries[8]
			if revoked.Target != (vault.AuditTarget{UserID: u.ID, Email: "ada@example.com", KeyID: k.ID}) {
				t.Fatalf("the revocation's target: %+v", revoked.Target)
			}
			if e := all.Entries[10]; e.Detail != "tokens-per-day=1000" {
				t.Fatalf("the policy change's detail: %q", e.Detail)
			}
			if e := all.Entries[2]; e.Reason != "ada@example.com has no key with id k_nope" || e.Target.KeyID != "k_nope" {
				t.Fatalf("the refused revocation: %+v", e)
			}
			b, _ := json.Marshal(all)
			for _, secret := range []string{k.Plaintext, testRefreshToken} {
				if bytes.Contains(b, []byte(secret)) {
					t.Fatalf("the audit log holds a secret: %s", b)
				}
			}

			// By user (the unknown email's refusal is not Ada's), by
			// action, by page.
			mine, err := s.ListAudit(ctx, AuditRequest{Email: "ADA@example.com"})
			if err != nil || len(mine.Entries) != 11 {
				t.Fatalf("Ada's entries: %v, %d", err, len(mine.Entries))
			}
			revokes, err := s.ListAudit(ctx, AuditRequest{Action: vault.AuditKeyRevoked})
			if err != nil || actions(revokes.Entries) != "key.revoked ok\nkey.revoked refused" {
				t.Fatalf("revocations: %v %q", err, actions(revokes.Entries))
			}
			var paged []vault.AuditEntry
			req := AuditRequest{Limit: 5}
			for pages := 0; ; pages++ {
				page, err := s.ListAudit(ctx, req)
				if err != nil || pages > 3 {
					t.Fatalf("page %d: %v", pages, err)
				}
				paged = append(paged, page.Entries...)
				if page.Next == "" {
					break
				}
				req.Before = page.Next
			}
			if actions(paged) != want {
				t.Fatalf("paged:\n%s", actions(paged))
			}
			future, err := s.ListAudit(ctx, AuditRequest{Since: time.Now().Add(time.Hour)})
			if err != nil || len(future.Entries) != 0 {
				t.Fatalf("since an hour ahead: %v %+v", err, future)
			}
			// Importing a login again replaces the first account's: a re-link.
			if _, err := s.UpsertUser(ctx, UserRequest{Email: "ada@example.com", AuthJSON: authJSON(t, "ada@example.com", "pro")}); err != nil {
				t.Fatal(err)
			}
			if last, err := s.ListAudit(ctx, AuditRequest{Limit: 1}); err != nil || last.Entries[0].Action != vault.AuditAccountRelinked {
				t.Fatalf("importing a login again: %v %+v", err, last)
			}
			if _, err := s.ListAudit(ctx, AuditRequest{Action: "key.stolen"}); StatusOf(err) != http.StatusBadRequest ||
				!strings.Contains(err.Error(), `unknown audit action "key.stolen"`) {
				t.Fatalf("an unknown action: %v", err)
			}
		})
	}
}

// failingAudit is a real bbolt store whose audit log cannot be written,
// as when the database refuses the write.
type failingAudit struct{ *bolt.Store }

var errAuditDown = errors.New("disk full")

func (failingAudit) AppendAudit(context.Context, vault.AuditEntry) error { return errAuditDown }

// TestAuditUnwrittenMeansUndone: when the entry cannot be written, an
// operator action is refused with a 503 and changes nothing.
func TestAuditUnwrittenMeansUndone(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "vault.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.New(failingAudit{st}, vault.Options{EncryptionKeys: []string{testEncKey}, Pepper: testPepper})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	u, err := v.CreateUser("ada@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	plain, k, err := v.CreateKey(u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	s := Local(v)
	_, err = s.RevokeKey(ctx, "ada@example.com", k.ID)
	if StatusOf(err) != http.StatusServiceUnavailable || !errors.Is(err, ErrAuditUnavailable) || !errors.Is(err, errAuditDown) {
		t.Fatalf("revoking with the audit log down: %v", err)
	}
	if _, _, err := v.VerifyKey(plain); err != nil {
		t.Fatalf("the key was revoked unrecorded: %v", err)
	}
	if _, err := s.SetUserEnabled(ctx, "ada@example.com", false); StatusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("disabling with the audit log down: %v", err)
	}
	if got, _ := v.UserByEmail("ada@example.com"); got.Disabled {
		t.Fatal("the user was disabled unrecorded")
	}
	if _, err := s.UpsertUser(ctx, UserRequest{Email: "bob@example.com"}); StatusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("creating a user with the audit log down: %v", err)
	}
	if _, err := v.UserByEmail("bob@example.com"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("the user was created unrecorded: %v", err)
	}
}

// TestWriteAuditCSV: a header, one row per entry, and cells a
// spreadsheet would run as formulas defused.
func TestWriteAuditCSV(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	err := WriteAuditCSV(&b, []vault.AuditEntry{{ID: "x1", Time: at, Action: vault.AuditKeyCreated, Outcome: vault.OutcomeOK,
		Actor:  vault.AuditActor{Kind: vault.ActorAdmin, Email: "ann@example.com"},
		Target: vault.AuditTarget{Email: "ada@example.com", KeyID: "k1"}, Detail: `label="=HYPERLINK(""x"")"`, Source: "192.0.2.1:5"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "time,actor,actor_email,actor_os_user,actor_via,action,detail,target_email,target_user_id,target_key_id,target_account_id,source,outcome,reason,id\n" +
		`2026-12-07T10:00:00Z,admin,ann@example.com,,,key.created,"label=""=HYPERLINK(""""x"""")""",ada@example.com,,k1,,192.0.2.1:5,ok,,x1` + "\n"
	if b.String() != want {
		t.Fatalf("CSV:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	_ = WriteAuditCSV(&b, []vault.AuditEntry{{Reason: "=cmd|' /C calc'!A0"}})
	if !strings.Contains(b.String(), ",'=cmd|") {
		t.Fatalf("a formula reached the CSV as one: %s", b.String())
	}
}
