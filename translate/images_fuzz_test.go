package translate

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzImagesRequest feeds arbitrary bodies to the Images API's JSON parser
// and mapping: each either answers a 400 in OpenAI's shape or becomes a
// valid upstream body that forces the image tool. Never a panic.
func FuzzImagesRequest(f *testing.F) {
	for _, s := range []string{
		`{"prompt":"a cat","n":2,"size":"1024x1024","quality":"high","output_format":"jpeg","output_compression":50}`,
		`{"prompt":"p","stream":true,"partial_images":2,"background":"transparent"}`,
		`{"prompt":"p","images":[{"image_url":"data:image/png;base64,iVBORw0KGgo="}],"mask":{"image_url":"data:image/png;base64,AA=="}}`,
		`{"prompt":"p","images":[{"file_id":"file_1"}]}`,
		`{"prompt":"","n":0}`, `{"prompt":"p","n":-1,"partial_images":9}`, `[]`, `{"prompt":1}`, `{"images":"x"}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, edit bool) {
		r, e := ParseImagesJSON(body, edit)
		if e != nil {
			if e.Status != 400 || e.Message == "" {
				t.Fatalf("parse error %d %q", e.Status, e.Message)
			}
			return
		}
		_ = DecodedImageSize(r.Mask)
		m, err := ImagesToResponses(r, ImagesOptions{CacheKeySalt: "u"})
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || te.Status != 400 || te.Message == "" {
				t.Fatalf("mapping error %v", err)
			}
			return
		}
		if !json.Valid(m.Body) || !UsesImageTool(m.Body) || !m.Images {
			t.Fatalf("mapped body without the image tool: %s", m.Body)
		}
		if n := r.Count(); n < 1 || n > MaxImages {
			t.Fatalf("n=%d passed validation", n)
		}
	})
}
