package bolt

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// TestLogRecordEncoding: the batch encoder writes what json.Marshal writes,
// for a record with every field set (so a field added to vault.LogRecord
// and not to appendLogRecord fails here, instead of being lost on disk),
// for the zero record, and for strings and times it hands to json.Marshal.
func TestLogRecordEncoding(t *testing.T) {
	full := vault.LogRecord{}
	v := reflect.ValueOf(&full).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-x_1.2")
		case reflect.Int, reflect.Int64:
			f.SetInt(int64(1000 + i))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Struct:
			f.Set(reflect.ValueOf(time.Date(2026, 12, 7, 23, 1, 2, 123456789, time.FixedZone("x", 3600))))
		default:
			t.Fatalf("field %s of kind %s: teach appendLogRecord and this test about it", v.Type().Field(i).Name, f.Kind())
		}
	}
	odd := full
	odd.Model, odd.ErrorCode = "<a&b>", "caf\u00e9 \"q\" \n\xff"
	for _, r := range []vault.LogRecord{
		full, {}, odd,
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Status: 200, UserID: "u"},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Status: -1, InputTokens: -5, Duration: -1},
	} {
		want, werr := json.Marshal(r)
		got, gerr := appendLogRecord([]byte("prefix"), &r)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%+v: error %v, json.Marshal's %v", r, gerr, werr)
		}
		if werr == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("appendLogRecord:\n got  %s\n want prefix%s", got, want)
		}
	}
}

// BenchmarkAppendLogRecord is one record's encoding into a batch buffer;
// BenchmarkMarshalLogRecord json.Marshal's, as AppendLogs did it.
func BenchmarkAppendLogRecord(b *testing.B) {
	r := benchLogRecord()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendLogRecord(buf[:0], &r)
	}
}

func BenchmarkMarshalLogRecord(b *testing.B) {
	r := benchLogRecord()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = json.Marshal(r)
	}
}

func benchLogRecord() vault.LogRecord {
	return vault.LogRecord{Time: time.Now(), UserID: "3f1c8a2e-5b7d-4e3a-9c1f-2a4b6c8d0e1f", KeyID: "7d9e1f3a-2b4c-4d6e-8f0a-1b3c5d7e9f2a",
		RequestID: "req_0123456789abcdef", Route: "chat", Model: "gpt-5-codex", Effort: "medium",
		Status: 200, Duration: 2 * time.Second, TTFB: 300 * time.Millisecond, AccountID: "acct-1",
		InputTokens: 1200, OutputTokens: 300, CachedTokens: 800, ReasoningTokens: 64}
}
