package api

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dustin/go-humanize"
)

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

// Set reads one option of the images block of a Caddyfile (max_image_size
// as a size such as 20MiB, model as a slug).
func (c *ImagesConfig) Set(option, value string) error {
	switch option {
	case "max_image_size":
		n, err := humanize.ParseBytes(value)
		if err != nil || n == 0 || n > 1<<32 {
			return fmt.Errorf("%w: max_image_size %q: use a size such as 20MiB, at most 4GiB", ErrImagesConfig, value)
		}
		c.MaxImageSize = int64(n)
	case "model":
		c.Model = value
	default:
		return fmt.Errorf("%w: unknown option %q (max_image_size, model)", ErrImagesConfig, option)
	}
	return c.Validate()
}

// ErrImagesConfig is wrapped by every ImagesConfig error.
var ErrImagesConfig = errors.New("invalid images config")

// Validate reports a setting out of range.
func (c ImagesConfig) Validate() error {
	if c.MaxImageSize < 0 {
		return fmt.Errorf("%w: max_image_size must not be negative", ErrImagesConfig)
	}
	if strings.ContainsAny(c.Model, " \t\"") {
		return fmt.Errorf("%w: model %q is not a model slug", ErrImagesConfig, c.Model)
	}
	return nil
}
