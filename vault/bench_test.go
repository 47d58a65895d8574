package vault

import (
	"context"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// BenchmarkVerifyKey is the per-request API key check: memory only.
func BenchmarkVerifyKey(b *testing.B) {
	v, _, _ := newTestVault(b, func(o *Options) { o.Now = time.Now })
	u := mustUser(b, v, "a@example.com")
	plain, _, _ := v.CreateKey(u.ID, "")
	for range 1000 { // a realistic index size
		v.CreateKey(u.ID, "")
	}
	commits := boltOf(v).Commits()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := v.VerifyKey(plain); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(boltOf(v).Commits()-commits), "disk-writes")
}

// BenchmarkAccessTokenFresh is the per-request token lookup: no decrypt,
// no disk.
func BenchmarkAccessTokenFresh(b *testing.B) {
	v, _, _ := newTestVault(b, func(o *Options) { o.Now = time.Now })
	u := mustUser(b, v, "a@example.com")
	if err := v.PutTokens(u.ID, bundle("rt-0", time.Now().Add(time.Hour))); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	stats := boltOf(v).DB().Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, _, err := v.AccessToken(ctx, u.ID, false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(boltOf(v).DB().Stats().TxN-stats.TxN), "disk-reads")
}

// BenchmarkLogRequest appends b.N records and includes the final flush in
// the time, so records/s is what the writer sustains. The buffer holds b.N
// records so none is dropped while the writer catches up.
func BenchmarkLogRequest(b *testing.B) {
	v, _, _ := newTestVault(b, func(o *Options) { o.Now = time.Now; o.LogBuffer = b.N })
	rec := LogRecord{UserID: "3f1c8a2e-5b7d-4e3a-9c1f-2a4b6c8d0e1f", KeyID: "7d9e1f3a-2b4c-4d6e-8f0a-1b3c5d7e9f2a",
		RequestID: "req_0123456789abcdef", Route: "/v1/chat/completions", Model: "gpt-5-codex", Effort: "medium",
		Status: 200, Duration: 2 * time.Second, TTFB: 300 * time.Millisecond,
		InputTokens: 1200, OutputTokens: 300, CachedTokens: 800, ReasoningTokens: 64}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		rec.Time = time.Now()
		v.LogRequest(rec)
	}
	if err := v.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if d := v.DroppedLogs(); d != 0 {
		b.Fatalf("%d records dropped", d)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkAdmitKey is the per-request policy check and its release, for a
// key with a concurrency limit and both token budgets: memory only, no
// store call.
func BenchmarkAdmitKey(b *testing.B) {
	v, _, _ := newTestVault(b, func(o *Options) { o.Now = time.Now })
	u := mustUser(b, v, "a@example.com")
	_, k, err := v.CreateKeyWithPolicy(u.ID, "", keypolicy.Policy{Concurrency: 4,
		TokensPerDay: keypolicy.MaxTokens, TokensPerWeek: keypolicy.MaxTokens})
	if err != nil {
		b.Fatal(err)
	}
	commits := boltOf(v).Commits()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		release, refused := v.AdmitKey(k)
		if refused != nil {
			b.Fatal(refused)
		}
		release()
	}
	b.StopTimer()
	b.ReportMetric(float64(boltOf(v).Commits()-commits), "disk-writes")
}
