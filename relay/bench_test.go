package relay

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// discard is a client connection that takes everything at once.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}
func (d *discard) Flush()                      {}

// BenchmarkStream is the relay's cost per chat stream, translation
// included, over a stream recorded from the fake backend.
func BenchmarkStream(b *testing.B) {
	body, err := io.ReadAll(upstream(b, codextest.ScenarioText))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		w := &discard{h: http.Header{}}
		o := Stream(b.Context(), w, io.NopCloser(bytes.NewReader(body)), chatStream(), Options{Start: time.Now(), Keepalive: time.Minute})
		if o.Status != http.StatusOK {
			b.Fatalf("status %d", o.Status)
		}
	}
}
