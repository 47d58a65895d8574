package api

// ImagesConfig configures the Images API (/v1/images/generations and
// /v1/images/edits) and the image inputs it takes. The zero value uses the
// defaults below.
type ImagesConfig struct {
	// MaxImageSize bounds each input image and mask of an edit, in bytes
	// after decoding; a larger one is refused with 413 before anything goes
	// upstream. Zero: DefaultMaxImageSize.
	MaxImageSize int64 `json:"max_image_size,omitempty"`
	// Model is the Codex model that runs an image's turn (the image model
	// itself is the request's, gpt-image-2 by default). Empty:
	// translate.DefaultImagesHostModel.
	Model string `json:"model,omitempty"`
}

// DefaultMaxImageSize is the input image cap of a zero ImagesConfig: the
// 20 MiB the Images API allows for an image_url.
const DefaultMaxImageSize = 20 << 20

// maxImageSize is the effective cap.
func (c ImagesConfig) maxImageSize() int64 {
	if c.MaxImageSize <= 0 {
		return DefaultMaxImageSize
	}
	return c.MaxImageSize
}
