package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/internal/pgtest"
	"github.com/usemysub/caddy-codex-proxy/vault"
)

// BenchmarkPostgres measures the engine on a loopback PostgreSQL (one
// cluster for all sub-benchmarks):
//
//   - VerifyKeyCached: an API-key check, served from memory as on bbolt.
//   - GetUserRoundTrip: one store read, what a cache miss costs.
//   - AppendLogs: request-log ingest in the Vault's batches (records/s).
//   - RevokePropagation: from RevokeKey on instance A until instance B
//     refuses the key (p50/p99).
func BenchmarkPostgres(b *testing.B) {
	dsn := pgtest.Start(b).NewDB(b)
	a := openInstance(b, dsn, nil)
	other := openInstance(b, dsn, nil)
	ctx := context.Background()
	u, err := a.v.CreateUser("bench@example.com", "Bench")
	if err != nil {
		b.Fatal(err)
	}
	key, rec, err := a.v.CreateKey(u.ID, "bench")
	if err != nil {
		b.Fatal(err)
	}

	b.Run("VerifyKeyCached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := a.v.VerifyKey(key); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("GetUserRoundTrip", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.s.GetUser(ctx, u.ID); err != nil {
				b.Fatal(err)
			}
		}
	})

	// The Vault commits every 200 ms or 512 records, and takes up to 16
	// batches of backlog into one commit under load.
	for _, batch := range []int{vault.DefaultLogBatchSize, 16 * vault.DefaultLogBatchSize} {
		b.Run(fmt.Sprintf("AppendLogs/batch=%d", batch), func(b *testing.B) { benchAppend(b, a, u.ID, rec.ID, batch) })
	}
	b.Run("RevokePropagation", func(b *testing.B) {
		var lat []time.Duration
		for b.Loop() {
			b.StopTimer()
			k, rec, err := a.v.CreateKey(u.ID, "revoke-me")
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, _, err := other.v.VerifyKey(k); err == nil {
					break
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StartTimer()
			start := time.Now()
			if err := a.v.RevokeKey(u.ID, rec.ID); err != nil {
				b.Fatal(err)
			}
			for {
				if _, _, err := other.v.VerifyKey(k); errors.Is(err, vault.ErrKeyInvalid) {
					break
				}
				time.Sleep(20 * time.Microsecond)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	})
}

// benchAppend ingests batches of batch records of one key with their
// usage roll-ups (the user's, the key's).
func benchAppend(b *testing.B, inst instance, userID, keyID string, batch int) {
	ctx := context.Background()
	recs := make([]vault.LogRecord, batch)
	now := time.Now().UTC()
	for i := range recs {
		recs[i] = vault.LogRecord{Time: now.Add(time.Duration(i) * time.Microsecond), UserID: userID, KeyID: keyID, RequestID: fmt.Sprint("req-", i),
			Route: "/v1/chat/completions", Model: "gpt-5-codex", Effort: "medium", Status: 200, Duration: time.Second,
			TTFB: 300 * time.Millisecond, InputTokens: 1200, OutputTokens: 300, CachedTokens: 800}
	}
	usage := []vault.UsageDelta{{UserID: userID, DayUsage: vault.DayUsage{Day: now.Truncate(24 * time.Hour), Requests: int64(batch)}}}
	start := time.Now()
	n := 0
	for b.Loop() {
		if err := inst.s.AppendLogs(ctx, recs, usage); err != nil {
			b.Fatal(err)
		}
		n += batch
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkPostgresCacheUsage is one /v1/usage cache summary on a
// loopback PostgreSQL for a user with 1,000 and 100,000 records in the
// week: the same roll-up rows (7 days × 3 models × 2 keys) either way.
func BenchmarkPostgresCacheUsage(b *testing.B) {
	dsn := pgtest.Start(b).NewDB(b)
	inst := openInstance(b, dsn, nil)
	ctx := context.Background()
	now := time.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	end := today.Add(23 * time.Hour)
	models := []string{"gpt-5.5", "gpt-5.4-mini", "gpt-6-astra"}
	for _, n := range []int{1000, 100000} {
		user := fmt.Sprint("u", n)
		batch := make([]vault.LogRecord, 0, 5000)
		for i := range n {
			batch = append(batch, vault.LogRecord{Time: end.Add(-time.Duration(i%(7*24)) * time.Hour), UserID: user,
				KeyID: []string{"k1", "k2"}[i%2], Model: models[i%3], RequestID: fmt.Sprint("r", i), Status: 200,
				InputTokens: 100, OutputTokens: 5, CachedTokens: 40})
			if len(batch) == cap(batch) || i == n-1 {
				if err := inst.s.AppendLogs(ctx, batch, nil); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if u, err := inst.v.CacheUsage(user, "", today.AddDate(0, 0, -6)); err != nil || u.Requests != int64(n) {
					b.Fatalf("%d requests, %v", u.Requests, err)
				}
			}
		})
	}
}
