package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestKeyBudgetAcrossInstances: a key's token budget holds for the total of
// two instances on one database. Usage logged on A is refused on B within
// a second once the total reaches the budget; each instance counts every
// request once (its own included, before and after they are written); a
// usage reset on A lets B admit again; B restarted rebuilds the cluster's
// total; B catches up on usage it missed while its listener was down.
func TestKeyBudgetAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	a := openInstance(t, dsn, nil)
	b := openInstance(t, dsn, nil)
	const budget = 1000
	u, err := a.v.CreateUser("alice@example.com", "Alice")
	if err != nil {
		t.Fatal(err)
	}
	plain, key, err := a.v.CreateKeyWithPolicy(u.ID, "ci", keypolicy.Policy{TokensPerDay: budget})
	if err != nil {
		t.Fatal(err)
	}
	// onB is the key as B has it, once B has it.
	onB := func(b instance) vault.Key {
		var k vault.Key
		eventually(t, propagation, "B knows the key", func() bool {
			k, _, err = b.v.VerifyKey(plain)
			return err == nil
		})
		return k
	}
	kb := onB(b)
	// use has inst admit and log one request of n tokens.
	use := func(inst instance, k vault.Key, n int64) {
		t.Helper()
		release, refused := inst.v.AdmitKey(k)
		if refused != nil {
			t.Fatalf("refused: %v", refused)
		}
		inst.v.LogRequest(vault.LogRecord{UserID: u.ID, KeyID: k.ID, Status: 200, InputTokens: n - n/4, OutputTokens: n / 4})
		release()
	}
	used := func(inst instance, k vault.Key) int64 { return inst.v.KeyStatus(k).TokensToday.Used }
	// settled checks every instance counts want now and still does after
	// its own writes and notifications had time to come back.
	settled := func(want int64, insts ...instance) {
		t.Helper()
		for _, inst := range insts {
			eventually(t, propagation, "usage reaches every instance", func() bool { return used(inst, key) == want })
		}
		time.Sleep(500 * time.Millisecond) // more than a flush and a notification
		for i, inst := range insts {
			if got := used(inst, key); got != want {
				t.Fatalf("instance %d counts %d tokens, want %d", i, got, want)
			}
		}
	}

	use(a, key, 600)
	if got := used(a, key); got != 600 {
		t.Fatalf("A counts its own request as %d at once, want 600", got)
	}
	settled(600, a, b)
	if _, refused := b.v.AdmitKey(kb); refused != nil {
		t.Fatalf("B refused at 600 of %d: %v", budget, refused)
	}

	use(a, key, 400)
	took := eventually(t, propagation, "B refuses once the total reaches the budget", func() bool {
		_, refused := b.v.AdmitKey(kb)
		return refused != nil && refused.Reason == keypolicy.ReasonDayBudget
	})
	t.Logf("usage logged on A → budget refused on B after %s (flush every %s)", took, vault.DefaultLogFlushInterval)
	settled(1000, a, b)

	// B's own request (admitted before the budget filled, ending now)
	// counts on B at once and on A once written.
	b.v.LogRequest(vault.LogRecord{UserID: u.ID, KeyID: kb.ID, Status: 200, InputTokens: 50})
	if got := used(b, kb); got != 1050 {
		t.Fatalf("B counts its own request as %d at once, want 1050", got)
	}
	settled(1050, a, b)

	// A reset on A reaches B: it admits again, counting from zero.
	if err := a.v.ResetKeyUsage(u.ID, key.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, propagation, "B admits after a reset on A", func() bool {
		release, refused := b.v.AdmitKey(kb)
		if refused == nil {
			release()
		}
		return refused == nil
	})
	settled(0, a, b)
	use(a, key, 200)
	use(b, kb, 300)
	settled(500, a, b)

	// B restarted rebuilds the cluster's total (not its own 300, not the
	// request log's 1550 from before the reset).
	if err := b.v.Close(); err != nil {
		t.Fatal(err)
	}
	b = openInstance(t, dsn, nil)
	kb = onB(b)
	if got := used(b, kb); got != 500 {
		t.Fatalf("B restarted counts %d tokens, want 500", got)
	}

	// B misses a notification while its listener is down, and catches up
	// when it reconnects.
	entered, resume := make(chan struct{}), make(chan struct{})
	hook := func() {
		entered <- struct{}{}
		<-resume
	}
	b.s.testHookBeforeListen.Store(&hook)
	terminate(t, dsn, b.s.listenPID.Load())
	<-entered
	b.s.testHookBeforeListen.Store(nil)
	use(a, key, 500)
	eventually(t, propagation, "A writes its request", func() bool {
		got, err := a.s.KeyUsage(context.Background(), []string{key.ID}, keypolicy.DayStart(time.Now()), keypolicy.WeekStart(time.Now()))
		return err == nil && got[key.ID].Day == 1000
	})
	if got := used(b, kb); got != 500 {
		t.Fatalf("B counts %d with its listener down: the test no longer exercises the reload", got)
	}
	close(resume)
	eventually(t, propagation, "B reloads usage after reconnecting", func() bool {
		_, refused := b.v.AdmitKey(kb)
		return refused != nil && refused.Reason == keypolicy.ReasonDayBudget
	})
	settled(1000, a, b)
}

// TestKeyUsageStore: what AppendLogs adds per key and day, what a reset
// clears, and that the schema step fills the table from the request log.
func TestKeyUsageStore(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	ctx := context.Background()
	inst := openInstance(t, dsn, nil)
	s := inst.s
	u, err := inst.v.CreateUser("bob@example.com", "Bob")
	if err != nil {
		t.Fatal(err)
	}
	_, k1, _ := inst.v.CreateKey(u.ID, "one")
	_, k2, _ := inst.v.CreateKey(u.ID, "two")
	now := time.Now().UTC()
	day, week := keypolicy.DayStart(now), keypolicy.WeekStart(now)
	yesterday := day.Add(-time.Hour)
	lastWeek := week.Add(-time.Hour)
	recs := []vault.LogRecord{
		{Time: now, UserID: u.ID, KeyID: k1.ID, Status: 200, InputTokens: 10, OutputTokens: 5},
		{Time: now, UserID: u.ID, KeyID: k1.ID, Status: 200, InputTokens: 1},
		{Time: yesterday, UserID: u.ID, KeyID: k1.ID, Status: 200, OutputTokens: 100},
		{Time: lastWeek, UserID: u.ID, KeyID: k1.ID, Status: 200, OutputTokens: 1000},
		{Time: now, UserID: u.ID, KeyID: k2.ID, Status: 200, InputTokens: 7},
		{Time: now, UserID: u.ID, KeyID: "deleted-key", Status: 200, InputTokens: 7},
		{Time: now, UserID: u.ID, Status: 200, InputTokens: 7},
		{Time: now, UserID: u.ID, KeyID: k2.ID, Status: 429, ErrorCode: keypolicy.CodeBudgetExhausted},
	}
	if err := s.AppendLogs(ctx, recs, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]keypolicy.Totals{k1.ID: {Day: 16, Week: 16}, k2.ID: {Day: 7, Week: 7}}
	if !yesterday.Before(week) {
		want[k1.ID] = keypolicy.Totals{Day: 16, Week: 116}
	}
	check := func(what string, ids []string, want map[string]keypolicy.Totals) {
		t.Helper()
		got, err := s.KeyUsage(ctx, ids, day, week)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
		for id, w := range want {
			if got[id] != w {
				t.Fatalf("%s: %v, want %v", what, got, want)
			}
		}
	}
	check("all keys", nil, want)
	check("one key", []string{k2.ID}, map[string]keypolicy.Totals{k2.ID: want[k2.ID]})
	check("no key", []string{}, map[string]keypolicy.Totals{})

	// A reset clears the key's usage; records that started before it add
	// nothing when they are written later.
	resetAt := now.Add(time.Second)
	if err := s.ResetKeyUsage(ctx, u.ID, k1.ID, resetAt); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, []vault.LogRecord{
		{Time: now, UserID: u.ID, KeyID: k1.ID, Status: 200, InputTokens: 50},
		{Time: resetAt, UserID: u.ID, KeyID: k1.ID, Status: 200, InputTokens: 3},
	}, nil); err != nil {
		t.Fatal(err)
	}
	check("after a reset", nil, map[string]keypolicy.Totals{k1.ID: {Day: 3, Week: 3}, k2.ID: want[k2.ID]})

	// The schema step fills the table from the request log (after the
	// reset point, within the last 8 days).
	if _, err := s.pool.Exec(ctx, `DROP TABLE codex_key_usage; UPDATE codex_proxy_schema SET version = 2`); err != nil {
		t.Fatal(err)
	}
	if err := s.migrateTo(ctx, migrations[:3]); err != nil { // that step alone: the later ones are in place
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `UPDATE codex_proxy_schema SET version = $1`, SchemaVersion); err != nil {
		t.Fatal(err)
	}
	backfilled := map[string]keypolicy.Totals{k1.ID: {Day: 3, Week: 3}, k2.ID: want[k2.ID]}
	check("backfilled", nil, backfilled)
}

// TestParseChange: notification payloads, the key-usage list included.
func TestParseChange(t *testing.T) {
	for _, tc := range []struct {
		payload string
		want    vault.Change
		ok      bool
	}{
		{"key:u1:k1", vault.Change{Kind: vault.ChangeKey, UserID: "u1", KeyID: "k1"}, true},
		{"user:a:b:", vault.Change{Kind: vault.ChangeUser, UserID: "a:b"}, true},
		{"usage::k1", vault.Change{Kind: vault.ChangeKeyUsage, KeyIDs: []string{"k1"}}, true},
		{"usage::k1,k2,k3", vault.Change{Kind: vault.ChangeKeyUsage, KeyIDs: []string{"k1", "k2", "k3"}}, true},
		{"usage", vault.Change{}, false},
		{"other::k1", vault.Change{}, false},
	} {
		got, ok := parseChange(tc.payload)
		if ok != tc.ok || got.Kind != tc.want.Kind || got.UserID != tc.want.UserID || got.KeyID != tc.want.KeyID ||
			strings.Join(got.KeyIDs, ",") != strings.Join(tc.want.KeyIDs, ",") || (got.KeyIDs == nil) != (tc.want.KeyIDs == nil) {
			t.Errorf("parseChange(%q) = %+v, %v; want %+v, %v", tc.payload, got, ok, tc.want, tc.ok)
		}
	}
}
