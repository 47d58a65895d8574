package translate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
)

// The OpenAI Images API (/v1/images/generations and /v1/images/edits) on
// the Codex backend, which has no images endpoint: one image is one
// Responses turn with the hosted image_generation tool forced
// (docs/protocol.md#image-generation). The upstream's image_generation_call item
// carries the base64 image; its partial images stream as
// response.image_generation_call.partial_image events.

// DefaultImageModel is the image model of a request that names none.
const DefaultImageModel = "gpt-image-2"

// MaxImages is the largest n an Images request may ask for (OpenAI's).
const MaxImages = 10

// ImagesRequest is one Images API request, from JSON or a multipart form.
// Images and Mask are data URLs (the API reads uploaded files into them).
type ImagesRequest struct {
	Prompt            string `json:"prompt"`
	Model             string `json:"model"`
	N                 *int   `json:"n"`
	Size              string `json:"size"`
	Quality           string `json:"quality"`
	Background        string `json:"background"`
	OutputFormat      string `json:"output_format"`
	OutputCompression *int   `json:"output_compression"`
	Moderation        string `json:"moderation"`
	ResponseFormat    string `json:"response_format"`
	Stream            bool   `json:"stream"`
	PartialImages     *int   `json:"partial_images"`
	InputFidelity     string `json:"input_fidelity"`
	// Edit is true on /v1/images/edits.
	Edit bool `json:"-"`
	// Images are the input images of an edit; Mask the optional mask.
	Images []string `json:"-"`
	Mask   string   `json:"-"`
}

// imageRef is one {image_url} or {file_id} of a JSON edit.
type imageRef struct {
	ImageURL string `json:"image_url"`
	FileID   string `json:"file_id"`
}

// ParseImagesJSON reads a JSON Images body; edit says it came to
// /v1/images/edits (images[] and mask as {image_url} references).
func ParseImagesJSON(body []byte, edit bool) (ImagesRequest, *Error) {
	var r ImagesRequest
	if err := json.Unmarshal(body, &r); err != nil {
		return r, invalidBody("the request body is not a valid Images API JSON object: %v", err)
	}
	r.Edit = edit
	if edit {
		var refs struct {
			Images []imageRef `json:"images"`
			Mask   *imageRef  `json:"mask"`
		}
		if err := json.Unmarshal(body, &refs); err != nil {
			return r, InvalidRequest("images", codeInvalidType, "images must be a list of {\"image_url\": …} objects: %v", err)
		}
		for i, ref := range refs.Images {
			if ref.FileID != "" {
				return r, InvalidRequest(fmt.Sprintf("images[%d].file_id", i), codeInvalidValue, "file ids are not supported here: send the image as a base64 data URL in image_url")
			}
			r.Images = append(r.Images, ref.ImageURL)
		}
		if refs.Mask != nil {
			if refs.Mask.FileID != "" {
				return r, InvalidRequest("mask.file_id", codeInvalidValue, "file ids are not supported here: send the mask as a base64 data URL in image_url")
			}
			r.Mask = refs.Mask.ImageURL
		}
	}
	return r, nil
}

// Count is the number of images asked for (n, default 1).
func (r ImagesRequest) Count() int {
	if r.N == nil {
		return 1
	}
	return *r.N
}

// ImagesOptions shape the upstream request of an Images call.
type ImagesOptions struct {
	// Model is the Codex (chat) model that calls the tool; the image model
	// is the request's. Empty: DefaultImagesHostModel.
	Model string
	// CacheKeySalt keeps prompt-cache keys apart between users.
	CacheKeySalt string
}

// DefaultImagesHostModel is the Codex model that runs an Images request's
// turn when the configuration names none.
const DefaultImagesHostModel = "gpt-5.4"

func oneOf(param, v string, allowed ...string) *Error {
	if v == "" || slices.Contains(allowed, v) {
		return nil
	}
	return InvalidRequest(param, codeInvalidValue, "Invalid value for '%s': '%s'. Supported values are: '%s'.", param, v, strings.Join(allowed, "', '"))
}

// Validate checks the request before anything goes upstream.
func (r ImagesRequest) Validate() *Error {
	if strings.TrimSpace(r.Prompt) == "" {
		return InvalidRequest("prompt", codeMissingParam, "Missing required parameter: 'prompt'.")
	}
	if n := r.Count(); n < 1 || n > MaxImages {
		return InvalidRequest("n", codeInvalidValue, "Invalid value for 'n': %d. It must be between 1 and %d.", n, MaxImages)
	}
	if r.Model != "" && !strings.HasPrefix(r.Model, "gpt-image-") && r.Model != "chatgpt-image-latest" {
		return InvalidRequest("model", codeInvalidValue, "The model '%s' cannot make images through a ChatGPT subscription: use %s.", r.Model, DefaultImageModel)
	}
	for _, e := range []*Error{
		oneOf("quality", r.Quality, "auto", "low", "medium", "high"),
		oneOf("background", r.Background, "auto", "transparent", "opaque"),
		oneOf("output_format", r.OutputFormat, "png", "jpeg", "webp"),
		oneOf("moderation", r.Moderation, "auto", "low"),
		oneOf("response_format", r.ResponseFormat, "b64_json"),
		oneOf("input_fidelity", r.InputFidelity, "high", "low"),
	} {
		if e != nil {
			if e.Param == "response_format" {
				e.Message = "Only response_format 'b64_json' is supported: the image comes back in data[].b64_json, not as a URL."
			}
			return e
		}
	}
	if r.Size != "" && r.Size != "auto" {
		w, h, ok := strings.Cut(r.Size, "x")
		wn, e1 := strconv.Atoi(w)
		hn, e2 := strconv.Atoi(h)
		if !ok || e1 != nil || e2 != nil || wn <= 0 || hn <= 0 {
			return InvalidRequest("size", codeInvalidValue, "Invalid value for 'size': '%s'. Use 'auto' or WIDTHxHEIGHT such as 1024x1024.", r.Size)
		}
	}
	if r.PartialImages != nil && (*r.PartialImages < 0 || *r.PartialImages > 3) {
		return InvalidRequest("partial_images", codeInvalidValue, "Invalid value for 'partial_images': %d. It must be between 0 and 3.", *r.PartialImages)
	}
	if r.OutputCompression != nil && (*r.OutputCompression < 0 || *r.OutputCompression > 100) {
		return InvalidRequest("output_compression", codeInvalidValue, "Invalid value for 'output_compression': %d. It must be between 0 and 100.", *r.OutputCompression)
	}
	if r.Edit && len(r.Images) == 0 {
		return InvalidRequest("image", codeMissingParam, "Missing required parameter: 'image'. Send one or more images to edit.")
	}
	return nil
}

// ImagesToResponses maps one image of r onto a Codex Responses body: the
// prompt (and the images to edit) as a user message, the image_generation
// tool with r's settings, and tool_choice forcing it.
func ImagesToResponses(r ImagesRequest, opts ImagesOptions) (*Mapped, error) {
	if e := r.Validate(); e != nil {
		return nil, e
	}
	tool := map[string]any{"type": "image_generation", "model": orStr(r.Model, DefaultImageModel)}
	set := func(k, v string) {
		if v != "" {
			tool[k] = v
		}
	}
	set("size", r.Size)
	set("quality", r.Quality)
	set("background", r.Background)
	set("output_format", r.OutputFormat)
	set("moderation", r.Moderation)
	set("input_fidelity", r.InputFidelity)
	if r.OutputCompression != nil {
		tool["output_compression"] = *r.OutputCompression
	}
	if r.Stream && r.PartialImages != nil {
		tool["partial_images"] = *r.PartialImages
	}
	content := []any{map[string]any{"type": "input_text", "text": r.Prompt}}
	if r.Edit {
		tool["action"] = "edit"
		for i, u := range r.Images {
			nu, e := normalizeImageURL(u, fmt.Sprintf("image[%d]", i))
			if e != nil {
				return nil, e
			}
			content = append(content, map[string]any{"type": "input_image", "image_url": nu})
		}
		if r.Mask != "" {
			mu, e := normalizeImageURL(r.Mask, "mask")
			if e != nil {
				return nil, e
			}
			tool["input_image_mask"] = map[string]any{"image_url": mu}
		}
	} else {
		tool["action"] = "generate"
	}
	model := orStr(opts.Model, DefaultImagesHostModel)
	key := derivePromptCacheKey(opts.CacheKeySalt, "images", r.Prompt)
	body := map[string]any{
		"model": model, "instructions": "",
		"input":       []any{map[string]any{"type": "message", "role": "user", "content": content}},
		"tools":       []any{tool},
		"tool_choice": map[string]any{"type": "image_generation"},
		"store":       false, "stream": true, "include": []string{}, "prompt_cache_key": key,
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, invalidBody("encoding the request failed: %v", err)
	}
	return &Mapped{Body: b, ClientModel: orStr(r.Model, DefaultImageModel), UpstreamModel: model,
		Stream: r.Stream, PromptCacheKey: key, Images: true}, nil
}

func orStr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// ImageResult is one generated image.
type ImageResult struct {
	B64JSON       string `json:"b64_json"`
	RevisedPrompt string `json:"revised_prompt,omitempty"`
	Size          string `json:"-"`
	Quality       string `json:"-"`
	Background    string `json:"-"`
	OutputFormat  string `json:"-"`
}

// imageItem is the part of an image_generation_call item read here.
type imageItem struct {
	Type          string `json:"type"`
	Result        string `json:"result"`
	RevisedPrompt string `json:"revised_prompt"`
	Size          string `json:"size"`
	Quality       string `json:"quality"`
	Background    string `json:"background"`
	OutputFormat  string `json:"output_format"`
}

// errNoImage is a turn that completed without an image (the model answered
// with text, or moderation removed it).
func errNoImage() *Error {
	return &Error{Status: http.StatusBadGateway, Type: "server_error", Code: apierror.CodeNoImage,
		Message: "The upstream finished without an image (it may have been refused by moderation). Try another prompt."}
}

// CollectImage reads one whole upstream stream and returns its image.
func CollectImage(r io.Reader) (ImageResult, StreamResult) {
	var c collector
	c.run(r)
	if c.res.Err != nil {
		return ImageResult{}, c.res
	}
	for _, raw := range c.outputItems() {
		var it imageItem
		if json.Unmarshal(raw, &it) == nil && it.Type == "image_generation_call" && it.Result != "" {
			return ImageResult{B64JSON: it.Result, RevisedPrompt: it.RevisedPrompt, Size: it.Size,
				Quality: it.Quality, Background: it.Background, OutputFormat: it.OutputFormat}, c.res
		}
	}
	c.res.Err = errNoImage()
	return ImageResult{}, c.res
}

// ImagesUsage is the usage object of an Images answer.
func ImagesUsage(u Usage) map[string]any {
	return map[string]any{
		"input_tokens": u.InputTokens, "output_tokens": u.OutputTokens, "total_tokens": u.TotalTokens,
		"input_tokens_details":  map[string]any{"text_tokens": u.InputTokens - u.ImageInputTokens, "image_tokens": u.ImageInputTokens},
		"output_tokens_details": map[string]any{"image_tokens": u.ImageOutputTokens, "text_tokens": u.OutputTokens - u.ImageOutputTokens},
	}
}

// ImagesAnswer is the JSON body of a non-streamed Images answer.
func ImagesAnswer(images []ImageResult, u Usage) []byte {
	body := map[string]any{"created": time.Now().Unix(), "data": images, "usage": ImagesUsage(u)}
	if len(images) > 0 {
		f := images[0]
		for k, v := range map[string]string{"size": f.Size, "quality": f.Quality, "background": f.Background, "output_format": f.OutputFormat} {
			if v != "" {
				body[k] = v
			}
		}
	}
	b, _ := json.Marshal(body)
	return b
}

// ImagesStream translates one upstream image turn into the Images API's
// stream events: <prefix>.partial_image for each partial image and
// <prefix>.completed with the image and usage, prefix being
// image_generation or image_edit. Not safe for concurrent use.
type ImagesStream struct {
	// Edit picks the image_edit.* event names.
	Edit    bool
	started bool
	done    bool
	image   *imageItem
	res     StreamResult
}

func (s *ImagesStream) prefix() string {
	if s.Edit {
		return "image_edit"
	}
	return "image_generation"
}

func appendImageEvent(dst []byte, typ string, v map[string]any) []byte {
	v["type"] = typ
	b, _ := json.Marshal(v)
	dst = append(dst, "event: "...)
	dst = append(dst, typ...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, b...)
	return append(dst, "\n\n"...)
}

// Translate implements relay.Translator.
func (s *ImagesStream) Translate(dst []byte, ev Event) []byte {
	e, ok := parseEvent(ev)
	if !ok || s.done {
		return dst
	}
	switch string(e.typ) {
	case "response.image_generation_call.partial_image":
		var p struct {
			B64   string `json:"partial_image_b64"`
			Index int    `json:"partial_image_index"`
			imageItem
		}
		if json.Unmarshal(ev.Data, &p) != nil {
			return dst
		}
		s.started = true
		return appendImageEvent(dst, s.prefix()+".partial_image", map[string]any{"b64_json": p.B64, "partial_image_index": p.Index,
			"created_at": time.Now().Unix(), "size": orStr(p.Size, "auto"), "quality": orStr(p.Quality, "auto"),
			"background": orStr(p.Background, "auto"), "output_format": orStr(p.OutputFormat, "png")})
	case "response.output_item.done":
		var it imageItem
		if json.Unmarshal(e.item, &it) == nil && it.Type == "image_generation_call" && it.Result != "" {
			s.image = &it
		}
	case "response.completed", "response.incomplete":
		s.res = completedResult(e, s.res)
		s.done = true
		if s.image == nil {
			s.res.Err = errNoImage()
			if !s.started {
				return dst // answered with its status by the relay
			}
			return s.Fail(dst, s.res.Err)
		}
		s.started = true
		it := s.image
		return appendImageEvent(dst, s.prefix()+".completed", map[string]any{"b64_json": it.Result, "created_at": time.Now().Unix(),
			"size": orStr(it.Size, "auto"), "quality": orStr(it.Quality, "auto"), "background": orStr(it.Background, "auto"),
			"output_format": orStr(it.OutputFormat, "png"), "usage": ImagesUsage(s.res.Usage)})
	case "response.failed", "error":
		s.done = true
		s.res.Err = failureFromEvent(e)
		if s.started {
			return s.Fail(dst, s.res.Err)
		}
	}
	return dst
}

// Finish implements relay.Translator: a stream that ended without its
// terminal event failed.
func (s *ImagesStream) Finish(dst []byte) []byte {
	if s.done {
		return dst
	}
	s.done = true
	s.res.Err = errIncomplete()
	if !s.started {
		return dst
	}
	return s.Fail(dst, s.res.Err)
}

// Fail implements relay.Translator: an OpenAI error event.
func (s *ImagesStream) Fail(dst []byte, err *Error) []byte {
	s.done = true
	if s.res.Err == nil {
		s.res.Err = err
	}
	b, _ := json.Marshal(map[string]any{"type": "error", "error": err})
	dst = append(dst, "event: error\ndata: "...)
	dst = append(dst, b...)
	return append(dst, "\n\n"...)
}

// Started implements relay.Translator.
func (s *ImagesStream) Started() bool { return s.started }

// Done implements relay.Translator.
func (s *ImagesStream) Done() bool { return s.done }

// Result implements relay.Translator.
func (s *ImagesStream) Result() StreamResult { return s.res }

// DecodedImageSize is the byte size of a base64 data URL's payload, for
// size caps (0 when it is not one).
func DecodedImageSize(u string) int64 {
	_, data, ok := strings.Cut(u, ",")
	if !ok {
		return 0
	}
	return int64(base64.StdEncoding.DecodedLen(len(data)))
}

// UsesImageTool reports whether an upstream body declares the hosted
// image_generation tool (a key policy may deny it).
func UsesImageTool(body []byte) bool {
	if !bytes.Contains(body, []byte(`"image_generation"`)) {
		return false // the common case, without decoding anything
	}
	var b struct {
		Tools []struct {
			Type string `json:"type"`
		} `json:"tools"`
	}
	_ = json.Unmarshal(body, &b)
	for _, t := range b.Tools {
		if t.Type == "image_generation" {
			return true
		}
	}
	return false
}
