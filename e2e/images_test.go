package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
)

// TestNodeImages runs the openai SDK 7 (e2e/node/images.mjs) against the
// built binary: images.generate and images.edit return decodable PNGs,
// streaming partial images arrive, a Responses call with the
// image_generation tool carries its image, and a key denied images gets
// 403.
func TestNodeImages(t *testing.T) {
	t.Parallel()
	caddyBinary(t)
	node := nodeBinary(t)
	needNodeModule(t, "openai")
	fake := newFake(t, codextest.Options{})
	p, key := startProxy(t, fake, "")
	denied, _ := p.cli(t, "keys", "create", "--email", "ada@example.com", "--label", "no-images", "--images", "deny")

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "images.mjs")
	cmd.Dir = nodeDir(t)
	cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+p.httpsURL+"/v1", "OPENAI_API_KEY="+key,
		"DENIED_KEY="+strings.TrimSpace(denied), "NODE_EXTRA_CA_CERTS="+p.rootCA)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node images.mjs: %v\nstderr:\n%s", err, stderr.String())
	}
	var res struct {
		Generate struct {
			B64   string
			Usage map[string]any
		}
		Edit, Responses struct{ B64 string }
		Stream          struct {
			Partials  int
			Completed string
		}
		Denied struct {
			Status int
			Code   string
		}
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &res); err != nil {
		t.Fatalf("node output: %v\n%.500s", err, stdout.String())
	}
	wantPNG := func(what, b64 string, w int) {
		t.Helper()
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", what, err)
		}
		if img.Bounds().Dx() != w {
			t.Errorf("%s: width %d, want %d", what, img.Bounds().Dx(), w)
		}
	}
	wantPNG("images.generate", res.Generate.B64, 64)
	wantPNG("images.edit", res.Edit.B64, 32)
	wantPNG("streamed image", res.Stream.Completed, 32)
	wantPNG("responses image_generation_call", res.Responses.B64, 32)
	if res.Stream.Partials != 2 {
		t.Errorf("%d partial images, want 2", res.Stream.Partials)
	}
	if out, _ := res.Generate.Usage["output_tokens"].(float64); out <= 0 {
		t.Errorf("usage %v: no image tokens", res.Generate.Usage)
	}
	if res.Denied.Status != 403 || res.Denied.Code != "images_not_allowed" {
		t.Errorf("denied key: %+v, want 403 images_not_allowed", res.Denied)
	}
	edits := 0
	for _, rq := range fake.RequestsTo("/responses") {
		if strings.Contains(string(rq.Body), `"input_image_mask"`) {
			edits++
		}
	}
	if edits != 1 {
		t.Errorf("%d upstream requests carried the mask, want the edit's 1", edits)
	}
}
