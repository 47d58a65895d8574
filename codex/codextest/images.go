package codextest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"slices"
	"strconv"
	"strings"
)

// The hosted image_generation tool (docs/protocol.md#image-generation). A
// request that declares it gets an image_generation_call instead of text:
// partial images first (as many as the tool's partial_images asks), then the
// final image, a real PNG (or JPEG) of the requested size, and image-model
// tokens in response.tool_usage.image_gen.

// imageToolFields are the fields the backend accepts on the tool; any other
// is "Unknown parameter: 'tools[N].<name>'" (the Images API's mask is one:
// on the tool it is input_image_mask).
var imageToolFields = []string{"type", "model", "size", "quality", "background", "output_format",
	"output_compression", "moderation", "partial_images", "action", "input_image_mask", "input_fidelity"}

// imageModels are the image models the tool takes.
var imageModels = []string{"gpt-image-2", "gpt-image-2-2026-04-21", "gpt-image-1.5", "gpt-image-1", "gpt-image-1-mini"}

// MaxImageEdge bounds the fake's rendered images; sizes above it are refused
// as the backend refuses edges over 3840.
const MaxImageEdge = 3840

// validateImageTool checks one image_generation tool at tools[i].
func validateImageTool(i int, tool map[string]any) *apiError {
	at := func(f string) string { return fmt.Sprintf("tools[%d].%s", i, f) }
	for k := range tool {
		if !slices.Contains(imageToolFields, k) {
			return badRequest(fmt.Sprintf("Unknown parameter: '%s'.", at(k)), at(k), "unknown_parameter")
		}
	}
	enum := func(f string, allowed ...string) *apiError {
		v, ok := tool[f]
		if !ok {
			return nil
		}
		if s, _ := v.(string); !slices.Contains(allowed, s) {
			return badRequest(fmt.Sprintf("Invalid value: '%v'. Supported values are: '%s'.", v, strings.Join(allowed, "', '")), at(f), "invalid_value")
		}
		return nil
	}
	for _, e := range []*apiError{
		enum("model", imageModels...),
		enum("quality", "low", "medium", "high", "auto"),
		enum("background", "transparent", "opaque", "auto"),
		enum("output_format", "png", "webp", "jpeg"),
		enum("moderation", "low", "auto"),
		enum("action", "generate", "edit", "auto"),
	} {
		if e != nil {
			return e
		}
	}
	if v, ok := tool["partial_images"]; ok {
		if n, ok := v.(float64); !ok || n < 0 || n > 3 || n != float64(int(n)) {
			return badRequest(fmt.Sprintf("Invalid '%s': expected an integer between 0 and 3.", at("partial_images")), at("partial_images"), "invalid_value")
		}
	}
	if v, ok := tool["output_compression"]; ok {
		if n, ok := v.(float64); !ok || n < 0 || n > 100 {
			return badRequest(fmt.Sprintf("Invalid '%s': expected an integer between 0 and 100.", at("output_compression")), at("output_compression"), "invalid_value")
		}
	}
	if v, ok := tool["size"]; ok {
		s, _ := v.(string)
		if _, _, ok := imageSize(s); !ok {
			return badRequest(fmt.Sprintf("Invalid size '%s'. Use 'auto' or WIDTHxHEIGHT with both edges multiples of 16, at most %d.", s, MaxImageEdge), at("size"), "invalid_value")
		}
	}
	if m, ok := tool["input_image_mask"]; ok {
		mm, _ := m.(map[string]any)
		u, _ := mm["image_url"].(string)
		if !strings.HasPrefix(u, "data:image/") {
			return badRequest("The mask must be a base64 data URL of an image.", at("input_image_mask.image_url"), "invalid_value")
		}
	}
	return nil
}

// imageSize reads "auto" (1024x1024) or "WxH".
func imageSize(s string) (w, h int, ok bool) {
	if s == "" || s == "auto" {
		return 1024, 1024, true
	}
	ws, hs, found := strings.Cut(s, "x")
	w, err1 := strconv.Atoi(ws)
	h, err2 := strconv.Atoi(hs)
	if !found || err1 != nil || err2 != nil || w < 16 || h < 16 || w > MaxImageEdge || h > MaxImageEdge || w%16 != 0 || h%16 != 0 {
		return 0, 0, false
	}
	return w, h, true
}

// imageTool returns the request's image_generation tool, if any.
func imageTool(req map[string]any) (map[string]any, bool) {
	tools, _ := req["tools"].([]any)
	for _, t := range tools {
		if tm, ok := t.(map[string]any); ok && tm["type"] == "image_generation" {
			return tm, true
		}
	}
	return nil, false
}

// RenderImage draws the fake's image: a w×h picture whose colour depends on
// step (partial renders get darker shades), encoded as format ("jpeg", else
// PNG). Tests decode it to check it is real.
func RenderImage(w, h, step int, format string) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	shade := uint8(60 + 60*min(step, 3))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.NRGBA{R: shade, G: uint8(x * 255 / w), B: uint8(y * 255 / h), A: 255})
		}
	}
	var b bytes.Buffer
	if format == "jpeg" {
		_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 80})
	} else {
		_ = png.Encode(&b, img)
	}
	return b.Bytes()
}

// imageCall adds an image_generation_call item: in_progress, generating,
// the partial images, completed, then the item with the result.
func (g *gen) imageCall(tool map[string]any, prompt string) {
	idx, id := len(g.out), newID("ig_")
	w, h, _ := imageSize(str(tool["size"]))
	format := orDefault(str(tool["output_format"]), "png")
	rendered := "png"
	if format == "jpeg" {
		rendered = "jpeg"
	}
	meta := map[string]any{"size": fmt.Sprintf("%dx%d", w, h), "quality": orDefault(str(tool["quality"]), "medium"),
		"background": orDefault(str(tool["background"]), "opaque"), "output_format": format}
	g.add("response.output_item.added", map[string]any{"output_index": idx, "item": map[string]any{"id": id, "type": "image_generation_call", "status": "in_progress"}})
	base := map[string]any{"item_id": id, "output_index": idx}
	g.add("response.image_generation_call.in_progress", base)
	g.add("response.image_generation_call.generating", base)
	partials, _ := tool["partial_images"].(float64)
	for k := 0; k < int(partials); k++ {
		ev := with(base, "partial_image_index", k)
		ev["partial_image_b64"] = base64.StdEncoding.EncodeToString(RenderImage(w, h, k, rendered))
		for mk, mv := range meta {
			ev[mk] = mv
		}
		g.add("response.image_generation_call.partial_image", ev)
	}
	g.add("response.image_generation_call.completed", base)
	item := map[string]any{"id": id, "type": "image_generation_call", "status": "completed",
		"result": base64.StdEncoding.EncodeToString(RenderImage(w, h, 3, rendered)), "revised_prompt": "A picture of " + prompt}
	for mk, mv := range meta {
		item[mk] = mv
	}
	g.add("response.output_item.done", map[string]any{"output_index": idx, "item": item})
	g.out = append(g.out, item)
	// gpt-image pricing counts output tokens by size: about 1 per 256 pixels.
	out := w * h / 256
	in := len(prompt)/4 + 1
	g.imageUsage = map[string]any{"image_gen": map[string]any{
		"input_tokens": in, "output_tokens": out, "total_tokens": in + out,
		"input_tokens_details":  map[string]any{"text_tokens": in, "image_tokens": 0},
		"output_tokens_details": map[string]any{"image_tokens": out, "text_tokens": 0},
	}}
}

func str(v any) string { s, _ := v.(string); return s }
