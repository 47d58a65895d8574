package codextest

import (
	"bytes"
	"encoding/base64"
	"image"
	_ "image/jpeg" // decodes the fake's JPEG renders
	"image/png"
	"io"
	"net/http"
	"strings"
	"testing"
)

func imageBody(tool map[string]any) map[string]any {
	b := validBody("a red fox")
	b["tools"] = []any{tool}
	b["tool_choice"] = map[string]any{"type": "image_generation"}
	return b
}

// TestImageGeneration: the tool yields partial images and a final image that
// decode at the requested size, with the image model's usage.
func TestImageGeneration(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	resp := post(t, s, tok, "acc-1", imageBody(map[string]any{"type": "image_generation", "model": "gpt-image-2",
		"size": "64x32", "partial_images": 2.0, "output_format": "png"}))
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	partials, finals := 0, 0
	for _, ev := range readEvents(t, resp.Body) {
		var b64 string
		switch ev.name {
		case "response.image_generation_call.partial_image":
			partials++
			b64, _ = ev.data["partial_image_b64"].(string)
		case "response.output_item.done":
			item, _ := ev.data["item"].(map[string]any)
			if item["type"] != "image_generation_call" {
				continue
			}
			finals++
			b64, _ = item["result"].(string)
		case "response.completed":
			r, _ := ev.data["response"].(map[string]any)
			tu, _ := r["tool_usage"].(map[string]any)
			ig, _ := tu["image_gen"].(map[string]any)
			if ig["output_tokens"].(float64) <= 0 {
				t.Errorf("no image tokens in %v", r["tool_usage"])
			}
			continue
		default:
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", ev.name, err)
		}
		if got := img.Bounds().Size(); got != (image.Point{64, 32}) {
			t.Errorf("%s: size %v, want 64x32", ev.name, got)
		}
	}
	if partials != 2 || finals != 1 {
		t.Errorf("partials %d finals %d, want 2 and 1", partials, finals)
	}
}

func TestImageToolRules(t *testing.T) {
	s := New(t)
	tok := s.AddAccount("acc-1", "a@example.com", "plus")
	tests := []struct {
		name string
		tool map[string]any
		want string
	}{
		{"mask on the tool", map[string]any{"type": "image_generation", "mask": "x"}, "Unknown parameter: 'tools[0].mask'."},
		{"bad model", map[string]any{"type": "image_generation", "model": "dall-e-3"}, "Invalid value: 'dall-e-3'"},
		{"partial images", map[string]any{"type": "image_generation", "partial_images": 4.0}, "tools[0].partial_images"},
		{"size", map[string]any{"type": "image_generation", "size": "100x100"}, "Invalid size '100x100'"},
		{"mask not data", map[string]any{"type": "image_generation", "input_image_mask": map[string]any{"image_url": "https://x"}}, "mask must be a base64 data URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, s, tok, "acc-1", imageBody(tt.tool))
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), tt.want) {
				t.Errorf("got %d %s, want 400 with %q", resp.StatusCode, b, tt.want)
			}
		})
	}
}

func TestRenderImageJPEG(t *testing.T) {
	img, format, err := image.Decode(bytes.NewReader(RenderImage(32, 16, 1, "jpeg")))
	if err != nil || format != "jpeg" || img.Bounds().Dx() != 32 {
		t.Fatalf("decode: %v %s", err, format)
	}
}
