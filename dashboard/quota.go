package dashboard

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// QuotaStore keeps each user's latest rate-limit snapshot, as the upstream
// reported it in its x-codex-* headers. Made by NewVaultQuotaStore, it
// keeps them in the vault, which stores them off the request path so they
// survive a restart; the zero value (or NewQuotaStore) keeps them in
// memory only. A nil *QuotaStore stores nothing. Safe for concurrent use.
type QuotaStore struct {
	m sync.Map     // user id → *QuotaSnapshot, without a vault
	v *vault.Vault // when set, snapshots live here instead
}

// QuotaSnapshot is one user's latest rate limits and when they were seen.
type QuotaSnapshot struct {
	codex.RateLimits
	Seen time.Time
}

// NewQuotaStore returns an empty in-memory store.
func NewQuotaStore() *QuotaStore { return &QuotaStore{} }

// NewVaultQuotaStore returns a store that keeps snapshots in v
// (Vault.RecordQuota and Vault.Quota).
func NewVaultQuotaStore(v *vault.Vault) *QuotaStore { return &QuotaStore{v: v} }

// Set records rl as userID's latest snapshot, seen now. It is cheap (a map
// store, also with a vault, which writes later), so it can run on the
// request path. A nil store or rl is a no-op.
func (s *QuotaStore) Set(userID string, rl *codex.RateLimits) {
	s.SetAt(userID, rl, time.Now())
}

// SetAt is Set with the time the snapshot was seen.
func (s *QuotaStore) SetAt(userID string, rl *codex.RateLimits, seen time.Time) {
	if s == nil || rl == nil || userID == "" {
		return
	}
	if s.v != nil {
		s.v.RecordQuota(userID, toVaultQuota(rl, seen))
		return
	}
	snap := &QuotaSnapshot{RateLimits: *rl, Seen: seen}
	// Copy the windows so the snapshot does not share the stream's.
	if rl.Primary != nil {
		w := *rl.Primary
		snap.Primary = &w
	}
	if rl.Secondary != nil {
		w := *rl.Secondary
		snap.Secondary = &w
	}
	if rl.Credits != nil {
		c := *rl.Credits
		snap.Credits = &c
	}
	// The families' windows are copied the same way, through the vault's
	// shape.
	snap.Families = fromVaultQuota(toVaultQuota(rl, seen)).Families
	s.m.Store(userID, snap)
}

// SetAccount records rl as the latest snapshot of one of userID's linked
// accounts, seen now. Without a vault the store keeps one snapshot per
// user, so it records rl as the user's.
func (s *QuotaStore) SetAccount(userID, accountID string, rl *codex.RateLimits) {
	if s == nil || rl == nil || userID == "" {
		return
	}
	if s.v != nil && accountID != "" {
		s.v.RecordAccountQuota(userID, accountID, toVaultQuota(rl, time.Now()))
		return
	}
	s.Set(userID, rl)
}

// GetAccount returns the latest snapshot of one of userID's accounts.
func (s *QuotaStore) GetAccount(userID, accountID string) (QuotaSnapshot, bool) {
	if s == nil || s.v == nil {
		return s.Get(userID)
	}
	q, err := s.v.AccountQuota(userID, accountID)
	if err != nil {
		return QuotaSnapshot{}, false
	}
	return fromVaultQuota(q), true
}

// Get returns userID's latest snapshot (of their preferred account).
func (s *QuotaStore) Get(userID string) (QuotaSnapshot, bool) {
	if s == nil {
		return QuotaSnapshot{}, false
	}
	if s.v != nil {
		q, err := s.v.Quota(userID)
		if err != nil {
			return QuotaSnapshot{}, false
		}
		return fromVaultQuota(q), true
	}
	v, ok := s.m.Load(userID)
	if !ok {
		return QuotaSnapshot{}, false
	}
	return *v.(*QuotaSnapshot), true
}

// toVaultQuota is rl as the vault stores it. The vault does not import
// codex, so it has its own copy of the shape.
func toVaultQuota(rl *codex.RateLimits, seen time.Time) vault.QuotaSnapshot {
	q := vault.QuotaSnapshot{PlanType: rl.PlanType, ActiveLimit: rl.ActiveLimit, Seen: seen}
	win := func(w *codex.RateWindow) *vault.QuotaWindow {
		if w == nil {
			return nil
		}
		return &vault.QuotaWindow{UsedPercent: w.UsedPercent, WindowMinutes: w.WindowMinutes, ResetAt: w.ResetAt, ResetAfter: w.ResetAfter}
	}
	q.Primary, q.Secondary = win(rl.Primary), win(rl.Secondary)
	if c := rl.Credits; c != nil {
		q.Credits = &vault.QuotaCredits{HasCredits: c.HasCredits, Unlimited: c.Unlimited, Balance: c.Balance}
	}
	for _, f := range rl.Families {
		q.Families = append(q.Families, vault.QuotaFamily{ID: f.ID, Name: f.Name, Primary: win(f.Primary), Secondary: win(f.Secondary)})
	}
	return q
}

// fromVaultQuota is the inverse of toVaultQuota.
func fromVaultQuota(q vault.QuotaSnapshot) QuotaSnapshot {
	snap := QuotaSnapshot{RateLimits: codex.RateLimits{PlanType: q.PlanType, ActiveLimit: q.ActiveLimit}, Seen: q.Seen}
	win := func(w *vault.QuotaWindow) *codex.RateWindow {
		if w == nil {
			return nil
		}
		return &codex.RateWindow{UsedPercent: w.UsedPercent, WindowMinutes: w.WindowMinutes, ResetAt: w.ResetAt, ResetAfter: w.ResetAfter}
	}
	snap.Primary, snap.Secondary = win(q.Primary), win(q.Secondary)
	if c := q.Credits; c != nil {
		snap.Credits = &codex.Credits{HasCredits: c.HasCredits, Unlimited: c.Unlimited, Balance: c.Balance}
	}
	for _, f := range q.Families {
		snap.Families = append(snap.Families, codex.RateFamily{ID: f.ID, Name: f.Name, Primary: win(f.Primary), Secondary: win(f.Secondary)})
	}
	return snap
}

// quotaView is the overview's rate-limit section.
type quotaView struct {
	Has      bool
	PlanType string
	Seen     time.Time
	Windows  []quotaWindow
	// ActiveLimit names the limit the backend enforces right now
	// (x-codex-active-limit); "" when it did not say.
	ActiveLimit string
}

// quotaWindow is one bar.
type quotaWindow struct {
	ID      string // element id suffix
	Label   string // "5-hour limit"
	Used    float64
	UsedStr string // "42%"
	ResetIn string // "resets in 2 h 10 min"; empty when unknown
	ResetAt time.Time
	// Active marks the window of the limit in force (ActiveLimit names
	// its family).
	Active bool
}

func buildQuotaView(snap QuotaSnapshot, ok bool, now time.Time) quotaView {
	if !ok {
		return quotaView{}
	}
	q := quotaView{Has: true, PlanType: snap.PlanType, Seen: snap.Seen, ActiveLimit: snap.ActiveLimit}
	active := normFamily(snap.ActiveLimit)
	add := func(id, prefix, fallback string, active bool, w *codex.RateWindow) {
		if w == nil {
			return
		}
		used := math.Max(0, math.Min(100, w.UsedPercent))
		qw := quotaWindow{ID: id, Label: prefix + windowLabel(w.WindowMinutes, fallback), Used: used, UsedStr: trimZero(fmt.Sprintf("%.1f", used)) + "%",
			ResetAt: w.ResetAt, Active: active}
		if !w.ResetAt.IsZero() {
			qw.ResetIn = resetIn(w.ResetAt.Sub(now))
		}
		q.Windows = append(q.Windows, qw)
	}
	add("primary", "", "5-hour limit", active == "codex", snap.Primary)
	add("secondary", "", "Weekly limit", active == "codex", snap.Secondary)
	for i, f := range snap.Families {
		name := f.Name
		if name == "" {
			name = f.ID
		}
		on := active != "" && normFamily(f.ID) == active
		add(fmt.Sprintf("f%d-primary", i), name+": ", "5-hour limit", on, f.Primary)
		add(fmt.Sprintf("f%d-secondary", i), name+": ", "Weekly limit", on, f.Secondary)
	}
	return q
}

// normFamily compares family ids as the backend spells them in headers
// (codex-bengalfox) and in x-codex-active-limit (codex_bengalfox).
func normFamily(id string) string { return strings.ReplaceAll(strings.ToLower(id), "-", "_") }

// windowLabel names a window by its length: 300 minutes is "5-hour limit",
// 10080 "Weekly limit".
func windowLabel(minutes int, fallback string) string {
	switch {
	case minutes <= 0:
		return fallback
	case minutes == 7*24*60:
		return "Weekly limit"
	case minutes%(24*60) == 0:
		return fmt.Sprintf("%d-day limit", minutes/(24*60))
	case minutes%60 == 0:
		return fmt.Sprintf("%d-hour limit", minutes/60)
	}
	return fmt.Sprintf("%d-minute limit", minutes)
}

// resetIn is "resets in 2 h 10 min", "resets in 3 d 4 h" or "resets now".
func resetIn(d time.Duration) string {
	if d < time.Minute {
		return "resets now"
	}
	d = d.Round(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0 && hours > 0:
		return fmt.Sprintf("resets in %d d %d h", days, hours)
	case days > 0:
		return fmt.Sprintf("resets in %d d", days)
	case hours > 0 && mins > 0:
		return fmt.Sprintf("resets in %d h %d min", hours, mins)
	case hours > 0:
		return fmt.Sprintf("resets in %d h", hours)
	}
	return fmt.Sprintf("resets in %d min", mins)
}
