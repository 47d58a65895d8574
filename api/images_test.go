package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/usemysub/caddy-codex-proxy/codex/codextest"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
)

// imageSSE is an upstream image turn: one partial image, the final PNG and
// the image model's usage in tool_usage.
func imageSSE() string {
	b64 := base64.StdEncoding.EncodeToString(codextest.RenderImage(32, 32, 3, "png"))
	part := base64.StdEncoding.EncodeToString(codextest.RenderImage(32, 32, 0, "png"))
	return `event: response.created
data: {"type":"response.created","response":{"id":"resp_i1","status":"in_progress","output":[]}}

event: response.image_generation_call.partial_image
data: {"type":"response.image_generation_call.partial_image","item_id":"ig_1","output_index":0,"partial_image_index":0,"partial_image_b64":"` + part + `","size":"32x32"}

event: response.output_item.done
data: {"type":"response.output_item.done","output_index":0,"item":{"id":"ig_1","type":"image_generation_call","status":"completed","result":"` + b64 + `","size":"32x32","output_format":"png"}}

event: response.completed
data: {"type":"response.completed","response":{"id":"resp_i1","status":"completed","output":[],"usage":{"input_tokens":10,"output_tokens":2,"total_tokens":12},"tool_usage":{"image_gen":{"input_tokens":5,"output_tokens":100,"total_tokens":105}}}}

`
}

func decodePNG(t *testing.T, b64 string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(raw)); err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
}

func TestImageGenerations(t *testing.T) {
	e := newEnv(t)
	e.up.sse = imageSSE()
	res, m := e.do(t, http.MethodPost, "/v1/images/generations", testKey, strings.NewReader(`{"model":"gpt-image-2","prompt":"a fox","n":3,"size":"1024x1024"}`))
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %v", res.StatusCode, m)
	}
	data, _ := m["data"].([]any)
	if len(data) != 3 {
		t.Fatalf("%d images, want 3", len(data))
	}
	for _, d := range data {
		decodePNG(t, d.(map[string]any)["b64_json"].(string))
	}
	usage := m["usage"].(map[string]any)
	if usage["output_tokens"].(float64) != 3*102 {
		t.Errorf("usage %v: want the image tokens of 3 turns", usage)
	}
	if e.up.calls() != 3 {
		t.Errorf("%d upstream calls, want 3", e.up.calls())
	}
	var body struct {
		Tools      []map[string]any `json:"tools"`
		ToolChoice map[string]any   `json:"tool_choice"`
	}
	_ = json.Unmarshal(e.up.bodies[0], &body)
	if len(body.Tools) != 1 || body.Tools[0]["type"] != "image_generation" || body.Tools[0]["model"] != "gpt-image-2" || body.Tools[0]["size"] != "1024x1024" {
		t.Errorf("upstream tools %v", body.Tools)
	}
	if rec := e.rec.last(); rec.OutputTokens != 3*102 || rec.Route != routeImageGenerations {
		t.Errorf("record %+v: want the image tokens counted", rec)
	}
}

func TestImageGenerationsStream(t *testing.T) {
	e := newEnv(t)
	e.up.sse = imageSSE()
	res, _ := e.do(t, http.MethodPost, "/v1/images/generations", testKey, strings.NewReader(`{"prompt":"a fox","stream":true,"partial_images":1}`))
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	out := buf.String()
	if res.StatusCode != 200 || !strings.Contains(out, "event: image_generation.partial_image") || !strings.Contains(out, "event: image_generation.completed") {
		t.Fatalf("status %d: %.300s", res.StatusCode, out)
	}
	if !strings.Contains(out, `"partial_image_index":0`) || !strings.Contains(out, `"usage":{`) {
		t.Errorf("events lack index or usage: %.300s", out)
	}
}

func TestImagesErrors(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"no prompt", `{"model":"gpt-image-2"}`, 400, "missing_required_parameter"},
		{"n too big", `{"prompt":"x","n":11}`, 400, "invalid_value"},
		{"url format", `{"prompt":"x","response_format":"url"}`, 400, "invalid_value"},
		{"chat model", `{"prompt":"x","model":"gpt-5.5"}`, 400, "invalid_value"},
		{"not json", `{`, 400, "invalid_body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			res, m := e.do(t, http.MethodPost, "/v1/images/generations", testKey, strings.NewReader(tt.body))
			if res.StatusCode != tt.status || errorCode(t, m) != tt.code {
				t.Errorf("got %d %v", res.StatusCode, m)
			}
			if e.up.calls() != 0 {
				t.Error("a refused request went upstream")
			}
		})
	}
}

func TestImagesDeniedByPolicy(t *testing.T) {
	for _, c := range []struct{ path, body string }{
		{"/v1/images/generations", `{"prompt":"a fox"}`},
		{"/v1/responses", `{"model":"gpt-5.5","input":"a fox","tools":[{"type":"image_generation"}]}`},
		{"/v1/chat/completions", `{"model":"gpt-5.5","messages":[{"role":"user","content":"a fox"}],"tools":[{"type":"image_generation"}]}`},
	} {
		t.Run(c.path, func(t *testing.T) {
			e := newEnv(t)
			e.keys.key.Policy = keypolicy.Policy{DenyImages: true}
			res, m := e.do(t, http.MethodPost, c.path, testKey, strings.NewReader(c.body))
			if res.StatusCode != http.StatusForbidden || errorCode(t, m) != keypolicy.CodeImagesNotAllowed {
				t.Fatalf("got %d %v, want 403 images_not_allowed", res.StatusCode, m)
			}
			if e.up.calls() != 0 {
				t.Error("a denied request went upstream")
			}
		})
	}
}

// multipartEdit builds an edits form with the given image bytes and mask.
func multipartEdit(t *testing.T, img, mask []byte) (*bytes.Buffer, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.WriteField("prompt", "make it blue")
	_ = mw.WriteField("model", "gpt-image-2")
	fw, _ := mw.CreateFormFile("image[]", "in.png")
	_, _ = fw.Write(img)
	if mask != nil {
		fw, _ = mw.CreateFormFile("mask", "mask.png")
		_, _ = fw.Write(mask)
	}
	_ = mw.Close()
	return &b, mw.FormDataContentType()
}

func TestImageEditsMultipart(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Images.MaxImageSize = 64 << 10 })
	e.up.sse = imageSSE()
	img := codextest.RenderImage(32, 32, 1, "png")
	body, ctype := multipartEdit(t, img, img)
	r, _ := http.NewRequest(http.MethodPost, "/v1/images/edits", body)
	r.Header.Set("Content-Type", ctype)
	res, m := e.doReq(t, r)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %v", res.StatusCode, m)
	}
	decodePNG(t, m["data"].([]any)[0].(map[string]any)["b64_json"].(string))
	up := string(e.up.bodies[0])
	for _, want := range []string{`"action":"edit"`, `"input_image_mask":{"image_url":"data:image/png;base64,`, `{"image_url":"data:image/png;base64,`} {
		if !strings.Contains(up, want) {
			t.Errorf("upstream body lacks %s", want)
		}
	}

	big := make([]byte, 65<<10)
	body, ctype = multipartEdit(t, big, nil)
	r, _ = http.NewRequest(http.MethodPost, "/v1/images/edits", body)
	r.Header.Set("Content-Type", ctype)
	res, m = e.doReq(t, r)
	if res.StatusCode != http.StatusRequestEntityTooLarge || errorCode(t, m) != "image_too_large" {
		t.Fatalf("got %d %v, want 413 image_too_large", res.StatusCode, m)
	}
	if e.up.calls() != 1 {
		t.Error("an oversized image went upstream")
	}
}

func TestImageEditsJSON(t *testing.T) {
	e := newEnv(t)
	e.up.sse = imageSSE()
	u := "data:image/png;base64," + base64.StdEncoding.EncodeToString(codextest.RenderImage(16, 16, 0, "png"))
	res, m := e.do(t, http.MethodPost, "/v1/images/edits", testKey, strings.NewReader(fmt.Sprintf(`{"prompt":"blue","images":[{"image_url":%q}]}`, u)))
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %v", res.StatusCode, m)
	}
	res, m = e.do(t, http.MethodPost, "/v1/images/edits", testKey, strings.NewReader(`{"prompt":"blue"}`))
	if res.StatusCode != 400 || errorCode(t, m) != "missing_required_parameter" {
		t.Errorf("edit without an image: %d %v", res.StatusCode, m)
	}
}

// doReq is do for a request built by the caller (a multipart form).
func (e *env) doReq(t *testing.T, r *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	r.Header.Set("Authorization", "Bearer "+testKey)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	var m map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &m)
	return w.Result(), m
}

func TestImagesConfigSet(t *testing.T) {
	var c ImagesConfig
	if err := c.Set("max_image_size", "5MiB"); err != nil || c.MaxImageSize != 5<<20 {
		t.Fatalf("max_image_size: %v %d", err, c.MaxImageSize)
	}
	if err := c.Set("model", "gpt-5.5"); err != nil || c.Model != "gpt-5.5" {
		t.Fatalf("model: %v", err)
	}
	for _, bad := range [][2]string{{"max_image_size", "lots"}, {"max_image_size", "0"}, {"colour", "red"}} {
		if err := c.Set(bad[0], bad[1]); !errors.Is(err, ErrImagesConfig) {
			t.Errorf("%v: %v, want ErrImagesConfig", bad, err)
		}
	}
	if (ImagesConfig{}).maxImageSize() != DefaultMaxImageSize {
		t.Error("the zero value must cap at DefaultMaxImageSize")
	}
}

// TestChatImagePart: an image the tool made reaches a chat client as an
// image_url content part in message.images (delta.images when streamed).
func TestChatImagePart(t *testing.T) {
	e := newEnv(t)
	e.up.sse = imageSSE()
	body := `{"model":"gpt-5.5","messages":[{"role":"user","content":"draw a fox"}],"tools":[{"type":"image_generation"}]`
	res, m := e.do(t, http.MethodPost, "/v1/chat/completions", testKey, strings.NewReader(body+`}`))
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %v", res.StatusCode, m)
	}
	msg := m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	imgs, _ := msg["images"].([]any)
	if len(imgs) != 1 {
		t.Fatalf("message %v: want one image part", msg)
	}
	part := imgs[0].(map[string]any)
	url, _ := part["image_url"].(map[string]any)["url"].(string)
	b64, ok := strings.CutPrefix(url, "data:image/png;base64,")
	if part["type"] != "image_url" || !ok {
		t.Fatalf("part %v", part)
	}
	decodePNG(t, b64)

	res, _ = e.do(t, http.MethodPost, "/v1/chat/completions", testKey, strings.NewReader(body+`,"stream":true}`))
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	if !strings.Contains(buf.String(), `"delta":{"images":[{"type":"image_url","image_url":{"url":"data:image/png;base64,`) {
		t.Errorf("stream lacks the image part: %.400s", buf.String())
	}
}
