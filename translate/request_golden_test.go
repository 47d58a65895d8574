package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

var updateRequestGolden = flag.Bool("update-request", false, "rewrite the expected sections of testdata/request/*.json")

// rqGolden is one testdata/request file: a client request and the exact
// upstream body it must produce.
type rqGolden struct {
	Endpoint       string          `json:"endpoint"` // "chat" or "responses"
	Options        rqGoldenOptions `json:"options"`
	Request        json.RawMessage `json:"request"`
	ExpectedMapped rqGoldenMapped  `json:"expected_mapped"`
	Expected       json.RawMessage `json:"expected"`
}

type rqGoldenOptions struct {
	SystemMode       SystemMode `json:"system_mode,omitempty"`
	ReasoningSummary string     `json:"reasoning_summary,omitempty"`
	CacheKeySalt     string     `json:"cache_key_salt,omitempty"`
}

type rqGoldenMapped struct {
	ClientModel     string    `json:"client_model"`
	UpstreamModel   string    `json:"upstream_model"`
	Effort          string    `json:"effort"`
	ServiceTier     string    `json:"service_tier"`
	Stream          bool      `json:"stream"`
	IncludeUsage    bool      `json:"include_usage"`
	ResponsesShaped bool      `json:"responses_shaped"`
	ToolNames       ToolNames `json:"tool_names"`
	CallIDs         CallIDs   `json:"call_ids"`
	LegacyFunctions bool      `json:"legacy_functions"`
	PromptCacheKey  string    `json:"prompt_cache_key"`
	Dropped         []string  `json:"dropped"`
}

func TestRequestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "request", "*.json"))
	if err != nil || len(files) < 8 {
		t.Fatalf("want at least 4 golden files, got %d (%v)", len(files), err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var g rqGolden
			if err := json.Unmarshal(raw, &g); err != nil {
				t.Fatal(err)
			}
			fn := ChatToResponses
			if g.Endpoint == "responses" {
				fn = NormalizeResponses
			}
			opts := RequestOptions{SystemMode: g.Options.SystemMode, ReasoningSummary: g.Options.ReasoningSummary, CacheKeySalt: g.Options.CacheKeySalt}
			m := rqMust(t, fn, string(g.Request), opts)
			got := rqGoldenMapped{
				ClientModel: m.ClientModel, UpstreamModel: m.UpstreamModel, Effort: m.Effort,
				ServiceTier: m.ServiceTier, Stream: m.Stream, IncludeUsage: m.IncludeUsage,
				ResponsesShaped: m.ResponsesShaped, ToolNames: m.ToolNames,
				CallIDs: m.CallIDs, LegacyFunctions: m.LegacyFunctions,
				PromptCacheKey: m.PromptCacheKey, Dropped: m.Dropped,
			}
			if *updateRequestGolden {
				g.ExpectedMapped, g.Expected = got, m.Body
				var b bytes.Buffer
				enc := json.NewEncoder(&b)
				enc.SetEscapeHTML(false)
				enc.SetIndent("", "  ")
				if err := enc.Encode(g); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			var want bytes.Buffer
			if err := json.Compact(&want, g.Expected); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(m.Body, want.Bytes()) {
				t.Errorf("body mismatch\n got: %s\nwant: %s", m.Body, want.Bytes())
			}
			if !reflect.DeepEqual(got, g.ExpectedMapped) {
				t.Errorf("mapped mismatch\n got: %+v\nwant: %+v", got, g.ExpectedMapped)
			}
		})
	}
}
