package postgres

import (
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// BenchmarkLogRows is what AppendLogs hands pgx's COPY per record: the
// row of column values, which allocates nothing per field.
func BenchmarkLogRows(b *testing.B) {
	recs := make([]vault.LogRecord, 256)
	for i := range recs {
		recs[i] = vault.LogRecord{Time: time.Now(), UserID: "u", KeyID: "k", RequestID: "r", Route: "chat", Model: "gpt-5.5",
			Status: 200, Duration: time.Second, InputTokens: 10, OutputTokens: 5}
	}
	b.ReportAllocs()
	for b.Loop() {
		rows := &logRows{recs: recs}
		for rows.Next() {
			if _, err := rows.Values(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestLogRowsValues: every column gets its record's value, converted to the
// column's type.
func TestLogRowsValues(t *testing.T) {
	at := time.Date(2026, 12, 7, 23, 0, 0, 0, time.FixedZone("x", 3600))
	rows := &logRows{recs: []vault.LogRecord{{Time: at, UserID: "u", Status: 429, Duration: 2 * time.Second, TTFB: 3, Estimated: true, RequestedTier: "fast"}}}
	if !rows.Next() {
		t.Fatal("no row")
	}
	v, _ := rows.Values()
	if len(v) != len(logColumns) {
		t.Fatalf("%d values for %d columns", len(v), len(logColumns))
	}
	if got := *v[0].(*time.Time); !got.Equal(at) || got.Location() != time.UTC {
		t.Errorf("time %v", got)
	}
	if *v[1].(*string) != "u" || *v[8].(*int32) != 429 || *v[9].(*int64) != int64(2*time.Second) || *v[10].(*int64) != 3 || !*v[18].(*bool) || *v[19].(*string) != "fast" {
		t.Errorf("values %v", v)
	}
	if rows.Next() {
		t.Error("a second row")
	}
}
