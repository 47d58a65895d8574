package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestAuditAcrossInstances: two instances on one database write one audit
// log, which each lists whole and in time order; entries about a user
// deleted on one stay for the other; both purging at once delete each old
// entry once.
func TestAuditAcrossInstances(t *testing.T) {
	dsn := pgtest.Start(t).NewDB(t)
	now := time.Now()
	clock := func() time.Time { return now }
	a := openInstance(t, dsn, func(o *vault.Options) { o.Now = clock })
	b := openInstance(t, dsn, func(o *vault.Options) { o.Now = clock })
	ctx := context.Background()
	u, err := a.v.CreateUser("ada@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, inst := range []instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				e := vault.AuditEntry{Action: vault.AuditKeyCreated, Time: now.Add(time.Duration(j*2+i) * time.Millisecond),
					Actor: vault.AuditActor{Kind: vault.ActorCLI, OSUser: "ops"}, Target: vault.AuditTarget{UserID: u.ID, Email: u.Email}}
				if _, err := inst.v.Audit(ctx, e); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if err := a.v.DeleteUser(u.ID); err != nil {
		t.Fatal(err)
	}
	for name, inst := range map[string]instance{"A": a, "B": b} {
		es, err := inst.v.AuditLog(ctx, vault.AuditQuery{TargetUserID: u.ID, Limit: 100})
		if err != nil || len(es) != 40 {
			t.Fatalf("%s lists %d entries (%v), want 40", name, len(es), err)
		}
		for i := 1; i < len(es); i++ {
			if !es[i].Time.Before(es[i-1].Time) {
				t.Fatalf("%s: entry %d at %v is not older than the one before at %v", name, i, es[i].Time, es[i-1].Time)
			}
		}
	}

	cut := now.Add(10 * time.Millisecond) // entries 0..9 of the 40 are older
	var purged [2]int
	for i, inst := range []instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := inst.s.PurgeAudit(ctx, cut)
			if err != nil {
				t.Error(err)
			}
			purged[i] = n
		}()
	}
	wg.Wait()
	if purged[0]+purged[1] != 10 {
		t.Fatalf("the two purges deleted %d and %d, want 10 in all", purged[0], purged[1])
	}
	if es, _ := b.v.AuditLog(ctx, vault.AuditQuery{Limit: 100}); len(es) != 30 {
		t.Fatalf("after the purges: %d entries, want 30", len(es))
	}
}
