package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/translate"
)

var update = flag.Bool("update", false, "rewrite the testdata/*/*.golden files")

// goldenRequest is one testdata/request file: a Messages request and the
// options it is translated with.
type goldenRequest struct {
	Options struct {
		SystemMode   translate.SystemMode `json:"system_mode"`
		CacheKeySalt string               `json:"cache_key_salt"`
		SessionID    string               `json:"session_id"`
	} `json:"options"`
	Request json.RawMessage `json:"request"`
}

// goldenResult is what a request became: the upstream body and what the
// answer needs, or the client's error.
type goldenResult struct {
	Upstream      json.RawMessage  `json:"upstream,omitempty"`
	Request       *Request         `json:"request,omitempty"`
	UpstreamModel string           `json:"upstream_model,omitempty"`
	Effort        string           `json:"effort,omitempty"`
	Dropped       []string         `json:"dropped,omitempty"`
	Error         *translate.Error `json:"error,omitempty"`
}

func loadGoldenRequest(t testing.TB, file string) goldenRequest {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var g goldenRequest
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return g
}

func TestRequestGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "request", "*.json"))
	if len(files) < 4 {
		t.Fatalf("want at least 4 golden requests, got %d", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			g := loadGoldenRequest(t, file)
			opts := Options{SessionID: g.Options.SessionID}
			opts.SystemMode, opts.CacheKeySalt = g.Options.SystemMode, g.Options.CacheKeySalt
			var res goldenResult
			m, err := ToResponses(g.Request, opts)
			if err != nil {
				if !errors.As(err, &res.Error) {
					t.Fatalf("error %T is not an *translate.Error", err)
				}
			} else {
				var pretty bytes.Buffer
				if err := json.Indent(&pretty, m.Body, "", "  "); err != nil {
					t.Fatalf("upstream body is not JSON: %v\n%s", err, m.Body)
				}
				res.Upstream = pretty.Bytes()
				res.Request, _ = m.Dialect.(*Request)
				res.UpstreamModel, res.Effort, res.Dropped = m.UpstreamModel, m.Effort, m.Dropped
			}
			got, _ := json.MarshalIndent(res, "", "  ")
			checkGolden(t, strings.TrimSuffix(file, ".json")+".golden", append(got, '\n'))
		})
	}
}

// checkGolden compares got with the golden file (rewritten with -update).
func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}
