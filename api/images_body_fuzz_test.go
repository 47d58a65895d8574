package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzImagesMultipart feeds arbitrary multipart bodies to the Images API's
// form reader: each is read, or refused with a 400 or a 413 in OpenAI's
// shape (an image over the cap, a body over max_body_size). Never a panic
// or a hang.
func FuzzImagesMultipart(f *testing.F) {
	const boundary = "XyZ"
	part := func(name, file, ctype, body string) string {
		s := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\""
		if file != "" {
			s += "; filename=\"" + file + "\""
		}
		if ctype != "" {
			s += "\r\nContent-Type: " + ctype
		}
		return s + "\r\n\r\n" + body + "\r\n"
	}
	end := "--" + boundary + "--\r\n"
	f.Add(part("prompt", "", "", "a cat") + part("image", "a.png", "image/png", "\x89PNG\r\n\x1a\n") + end)
	f.Add(part("prompt", "", "", "p") + part("image[]", "a.png", "", "\x89PNG") + part("image[]", "b.jpg", "image/jpeg", "\xff\xd8\xff") +
		part("mask", "m.png", "image/png", "\x89PNG") + part("n", "", "", "2") + part("size", "", "", "1024x1024") + end)
	f.Add(part("prompt", "", "", "p") + part("n", "", "", "x") + part("stream", "", "", "true") + part("partial_images", "", "", "9") + end)
	f.Add(part("image", "big.png", "image/png", strings.Repeat("A", 300)) + end)
	f.Add("--" + boundary + "\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nunterminated")
	f.Add("not multipart at all")
	h := &Handler{cfg: Config{MaxBodySize: 4096, Images: ImagesConfig{MaxImageSize: 256}}}
	f.Fuzz(func(t *testing.T, body string) {
		for _, edit := range []bool{false, true} {
			r := httptest.NewRequest(http.MethodPost, "/v1/images/edits", strings.NewReader(body))
			r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
			ir, e := h.readImagesRequest(httptest.NewRecorder(), r, edit)
			if e != nil {
				if (e.Status != http.StatusBadRequest && e.Status != http.StatusRequestEntityTooLarge) || e.Message == "" {
					t.Fatalf("error %d %q", e.Status, e.Message)
				}
				continue
			}
			for _, u := range append(ir.Images, ir.Mask) {
				if u != "" && !strings.HasPrefix(u, "data:") {
					t.Fatalf("an uploaded image became %q, not a data URL", u)
				}
				if n := max(0, len(u)-len("data:image/png;base64,")); int64(n) > 2*256 {
					t.Fatalf("an image over the 256-byte cap was accepted (%d base64 bytes)", n)
				}
			}
		}
	})
}
