package storetest

import (
	"bytes"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
	"github.com/usemysub/caddy-codex-proxy/vault/migrate"
)

// FillCounts is what Fill writes, per kind.
var FillCounts = vault.Counts{
	vault.KindUsers: 3, vault.KindKeys: 3, vault.KindTokens: 2, vault.KindSessions: 2, vault.KindLoginTokens: 1,
	vault.KindOAuthSessions: 1, vault.KindQuotas: 1, vault.KindRequestLogs: 5, vault.KindUsage: 2,
	vault.KindResponses: 2, vault.KindSettings: 1, vault.KindAudit: 2,
}

// Fill writes records of every kind into an empty store, as FillCounts
// says: a disabled user, keys with a policy, a usage reset point and a
// revocation, token bundles, expired and live sessions, request logs
// with equal times and one appended out of order, and roll-ups that two
// deltas added up. Engines' cross-copy tests use it as the source.
func Fill(t *testing.T, s vault.Store) {
	t.Helper()
	mustUser(t, s, "u-a", "a@example.com")
	b := user("u-b", "b@example.com")
	b.Disabled = true
	must(t, s.CreateUser(ctx, b))
	mustUser(t, s, "u-c", "c@example.com")

	k1 := key("k1", "u-a")
	k1.Policy = keypolicy.Policy{Expires: t0.Add(day), Models: []string{"gpt-5.4*"}, RPM: 10, TokensPerDay: 5000}
	k1.UsageReset, k1.LastUsed = t0.Add(time.Minute), t0.Add(2*time.Minute)
	must(t, s.CreateKey(ctx, k1))
	must(t, s.CreateKey(ctx, key("k2", "u-a")))
	must(t, s.RevokeKey(ctx, "u-a", "k2", t0.Add(time.Hour)))
	must(t, s.CreateKey(ctx, key("k3", "u-b")))

	for user, ct := range map[string]string{"u-a": "sealed bundle of a", "u-b": "sealed bundle of b"} {
		rec := tokens(7, ct)
		must(t, s.UpdateTokens(ctx, user, "a1", func(*vault.TokenRecord) (*vault.TokenRecord, error) { return &rec, nil }))
	}
	must(t, s.PutSession(ctx, hash("s1"), vault.SessionRecord{UserID: "u-a", Created: t0, Expires: t0.Add(day), AdminByClaim: true}))
	must(t, s.PutSession(ctx, hash("s2"), vault.SessionRecord{UserID: "u-c", Created: t0.Add(-2 * day), Expires: t0.Add(-day)}))
	must(t, s.PutLoginToken(ctx, hash("l1"), vault.LoginRecord{Email: "c@example.com", Expires: t0.Add(time.Hour)}))
	must(t, s.PutOAuthSession(ctx, hash("o1"), vault.OAuthRecord{UserID: "u-c", Expires: t0.Add(10 * time.Minute),
		Verifier: vault.Sealed{KeyID: "0a1b2c3d", Nonce: []byte("twelve-bytes"), Ciphertext: []byte("sealed verifier")}}))
	must(t, s.PutQuotas(ctx, map[vault.AccountRef]vault.QuotaSnapshot{{UserID: "u-a", ID: "a1"}: quota("plus", 42)}))
	if rs, ok := s.(vault.ResponseStore); ok {
		for _, r := range []vault.ResponseRecord{response("u-a", "resp_1", t0, 100, "msg_1", "rs_1"), response("u-c", "resp_2", t0.Add(time.Second), 50)} {
			_, err := rs.PutResponse(ctx, r, vault.ResponseLimits{})
			must(t, err)
		}
	}

	if ss, ok := s.(vault.SettingStore); ok {
		must(t, ss.PutSetting(ctx, "signup", []byte(`{"mode":"domains","domains":["example.com"]}`)))
	}
	if as, ok := s.(vault.AuditStore); ok {
		for _, e := range []vault.AuditEntry{auditEntry(t0, "u-a", vault.AuditKeyCreated), auditEntry(t0.Add(time.Second), "u-b", vault.AuditUserDisabled)} {
			must(t, as.AppendAudit(ctx, e))
		}
	}

	sec := time.Second
	must(t, s.AppendLogs(ctx, []vault.LogRecord{
		func() vault.LogRecord {
			r := logRec("r1", "u-a", t0, 200, "")
			r.AccountID, r.FailoverFrom = "a2", "a1"
			return r
		}(),
		logRec("r3", "u-b", t0.Add(sec), 500, "upstream_error"),
	}, []vault.UsageDelta{{UserID: "u-a", DayUsage: vault.DayUsage{Day: midnight(t0), Requests: 1, InputTokens: 1200}}}))
	must(t, s.AppendLogs(ctx, []vault.LogRecord{
		logRec("r4", "u-a", t0.Add(sec), 200, ""),   // same time as r3, appended later
		logRec("r2", "u-a", t0.Add(sec/2), 200, ""), // arrives late
		logRec("r5", "u-c", t0.Add(day), 200, ""),
	}, []vault.UsageDelta{
		{UserID: "u-a", DayUsage: vault.DayUsage{Day: midnight(t0), Requests: 2, Errors: 1, InputTokens: 100, OutputTokens: 7, CachedTokens: 3, ReasoningTokens: 2}},
		{UserID: "u-c", DayUsage: vault.DayUsage{Day: midnight(t0.Add(day)), Requests: 1, OutputTokens: 300}},
	}))
}

// exporter asserts s is a vault.Exporter (both engines here are).
func exporter(t *testing.T, s vault.Store) vault.Exporter {
	t.Helper()
	ex, ok := s.(vault.Exporter)
	if !ok {
		t.Skipf("%T does not implement the optional vault.Exporter", s)
	}
	return ex
}

// testExport: counts, and every kind the core interface cannot list,
// come back as written; the request log pages oldest first in append
// order.
func testExport(t *testing.T, h *harness) {
	s := h.store()
	ex := exporter(t, s)
	n, err := ex.Count(ctx)
	must(t, err)
	same(t, "Count of an empty store", n, vault.Counts{
		vault.KindUsers: 0, vault.KindKeys: 0, vault.KindTokens: 0, vault.KindSessions: 0, vault.KindLoginTokens: 0,
		vault.KindOAuthSessions: 0, vault.KindQuotas: 0, vault.KindRequestLogs: 0, vault.KindUsage: 0, vault.KindResponses: 0,
		vault.KindSettings: 0, vault.KindAudit: 0,
	})
	Fill(t, s)
	n, err = ex.Count(ctx)
	must(t, err)
	same(t, "Count", n, FillCounts)

	sessions, err := ex.ExportSessions(ctx)
	must(t, err)
	sort.Slice(sessions, func(i, j int) bool { return bytes.Compare(sessions[i].Key, sessions[j].Key) < 0 })
	same(t, "ExportSessions", sessions, []vault.SessionEntry{
		{Key: hash("s1"), SessionRecord: vault.SessionRecord{UserID: "u-a", Created: t0, Expires: t0.Add(day), AdminByClaim: true}},
		{Key: hash("s2"), SessionRecord: vault.SessionRecord{UserID: "u-c", Created: t0.Add(-2 * day), Expires: t0.Add(-day)}},
	})
	logins, err := ex.ExportLoginTokens(ctx)
	must(t, err)
	same(t, "ExportLoginTokens", logins, []vault.LoginEntry{{Key: hash("l1"), LoginRecord: vault.LoginRecord{Email: "c@example.com", Expires: t0.Add(time.Hour)}}})
	flows, err := ex.ExportOAuthSessions(ctx)
	must(t, err)
	same(t, "ExportOAuthSessions", flows, []vault.OAuthEntry{{Key: hash("o1"), OAuthRecord: vault.OAuthRecord{UserID: "u-c", Expires: t0.Add(10 * time.Minute),
		Verifier: vault.Sealed{KeyID: "0a1b2c3d", Nonce: []byte("twelve-bytes"), Ciphertext: []byte("sealed verifier")}}}})

	usage, err := ex.ExportUsage(ctx)
	must(t, err)
	sort.Slice(usage, func(i, j int) bool { return usage[i].UserID < usage[j].UserID })
	same(t, "ExportUsage: one row per user and day, deltas summed", usage, []vault.UsageDelta{
		{UserID: "u-a", DayUsage: vault.DayUsage{Day: midnight(t0), Requests: 3, Errors: 1, InputTokens: 1300, OutputTokens: 7, CachedTokens: 3, ReasoningTokens: 2}},
		{UserID: "u-c", DayUsage: vault.DayUsage{Day: midnight(t0.Add(day)), Requests: 1, OutputTokens: 300}},
	})

	var pages []string
	var all []vault.LogRecord
	pos := ""
	for range 10 {
		recs, next, err := ex.ExportLogs(ctx, pos, 2)
		must(t, err)
		pages = append(pages, ids(recs))
		all = append(all, recs...)
		if len(recs) > 0 && next == pos {
			t.Fatalf("ExportLogs returned records but did not move on from %q", pos)
		}
		pos = next
		if len(recs) < 2 {
			break
		}
	}
	if got, want := strings.Join(pages, " "), "[r1 r2] [r3 r4] [r5]"; got != want {
		t.Fatalf("ExportLogs pages of 2: got %s, want %s", got, want)
	}
	same(t, "exported record", all[2], logRec("r3", "u-b", t0.Add(time.Second), 500, "upstream_error"))
	recs, _, err := ex.ExportLogs(ctx, pos, 2)
	must(t, err)
	if len(recs) != 0 {
		t.Fatalf("ExportLogs after the last record: got %s", ids(recs))
	}
}

// testCopy: migrate.Copy into a fresh database of the same engine gives a
// store that reads the same everywhere; it refuses a non-empty target
// unless told to replace it; migrate.Verify notices a difference.
func testCopy(t *testing.T, h *harness) {
	src := h.store()
	exporter(t, src)
	Fill(t, src)
	dh := &harness{t: t, open: h.newDB(t)}
	dst := dh.store()

	n, err := migrate.Copy(ctx, src, dst, migrate.Options{LogBatch: 2})
	must(t, err)
	same(t, "copied", n, FillCounts)
	CheckSame(t, src, dst)

	_, err = migrate.Copy(ctx, src, dst, migrate.Options{})
	wantErr(t, "copy into a non-empty target", err, migrate.ErrNotEmpty)
	var ne *migrate.NotEmptyError
	if !errors.As(err, &ne) || ne.Counts[vault.KindUsers] != 3 || ne.Counts[vault.KindRequestLogs] != 5 {
		t.Fatalf("refusal does not say what the target holds: %v", err)
	}

	_, err = migrate.Copy(ctx, src, dst, migrate.Options{Replace: true})
	must(t, err)
	CheckSame(t, src, dst) // nothing doubled

	must(t, dst.RevokeKey(ctx, "u-b", "k3", time.Time{}))
	v, err := migrate.Verify(ctx, src, dst)
	must(t, err)
	if v.OK() || v.Matched[vault.KindKeys] != 2 || len(v.Problems) != 1 || !strings.Contains(v.Problems[0], "k3") {
		t.Fatalf("Verify after changing key k3 in the target: ok=%v matched=%v problems=%q", v.OK(), v.Matched, v.Problems)
	}
}

// CheckSame fails t unless dst holds what src holds: migrate.Verify passes,
// and the reads the Vault makes (recent logs of everyone and of a user,
// usage sums, tokens) answer the same.
func CheckSame(t *testing.T, src, dst vault.Store) {
	t.Helper()
	v, err := migrate.Verify(ctx, src, dst)
	must(t, err)
	if !v.OK() {
		t.Fatalf("Verify: source %v, target %v, matched %v, problems %q", v.Source, v.Target, v.Matched, v.Problems)
	}
	for _, q := range []vault.LogQuery{{Limit: 100}, {UserID: "u-a", Limit: 100}, {Limit: 2, Before: t0.Add(time.Second)}} {
		a, err := src.RecentLogs(ctx, q)
		must(t, err)
		b, err := dst.RecentLogs(ctx, q)
		must(t, err)
		same(t, "RecentLogs of the copy", b, a)
	}
	for _, user := range []string{"", "u-a"} {
		a, err := src.Usage(ctx, user, t0.Add(-day), t0.Add(2*day))
		must(t, err)
		b, err := dst.Usage(ctx, user, t0.Add(-day), t0.Add(2*day))
		must(t, err)
		same(t, "Usage of the copy", b, a)
	}
	a, err := src.GetTokens(ctx, "u-a", "a1")
	must(t, err)
	b, err := dst.GetTokens(ctx, "u-a", "a1")
	must(t, err)
	same(t, "sealed tokens of the copy", b, a)
}

// testDeleteAll: everything goes, the store works as new afterwards.
func testDeleteAll(t *testing.T, h *harness) {
	s := h.store()
	imp, ok := s.(vault.Importer)
	if !ok {
		t.Skipf("%T does not implement the optional vault.Importer", s)
	}
	exporter(t, s)
	Fill(t, s)
	must(t, imp.DeleteAll(ctx))
	must(t, closeOnce(s))
	s = h.store()
	ex := s.(vault.Exporter)
	n, err := ex.Count(ctx)
	must(t, err)
	if n.Total() != 0 {
		t.Fatalf("after DeleteAll and reopen the store holds %v", n)
	}
	_, err = s.GetUser(ctx, "u-a")
	wantErr(t, "GetUser after DeleteAll", err, vault.ErrNotFound)
	u, err := s.Usage(ctx, "", t0.Add(-day), t0.Add(2*day))
	must(t, err)
	if len(u) != 0 {
		t.Fatalf("usage roll-ups survived DeleteAll: %v", u)
	}
	Fill(t, s) // same ids and hashes again: no leftover index entry objects
	n, err = ex.Count(ctx)
	must(t, err)
	same(t, "Count after filling again", n, FillCounts)
}
