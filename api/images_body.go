package api

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// readImagesRequest reads an Images API body: JSON, or (edits, and
// generations from clients that send forms) multipart/form-data with the
// fields as form values and the images as files named image, image[] and
// mask. Each image is bounded by the configured cap (413).
func (h *Handler) readImagesRequest(w http.ResponseWriter, r *http.Request, edit bool) (translate.ImagesRequest, *apierror.Error) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	limit := h.cfg.Images.maxImageSize()
	if mt != "multipart/form-data" {
		body, bad := readBody(w, r, h.cfg.MaxBodySize)
		if bad != nil {
			return translate.ImagesRequest{}, bad
		}
		ir, e := translate.ParseImagesJSON(body, edit)
		if e != nil {
			return ir, e
		}
		for i, u := range ir.Images {
			if n := translate.DecodedImageSize(u); n > limit {
				return ir, apierror.ImageTooLarge("images["+strconv.Itoa(i)+"]", n, limit)
			}
		}
		if n := translate.DecodedImageSize(ir.Mask); n > limit {
			return ir, apierror.ImageTooLarge("mask", n, limit)
		}
		return ir, nil
	}
	if params["boundary"] == "" {
		return translate.ImagesRequest{}, apierror.InvalidBody("the multipart body has no boundary")
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodySize)
	mr, err := r.MultipartReader()
	if err != nil {
		return translate.ImagesRequest{}, apierror.InvalidBody("the request body is not valid multipart/form-data: %v", err)
	}
	ir := translate.ImagesRequest{Edit: edit}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return ir, multipartError(err, h.cfg.MaxBodySize)
		}
		name := part.FormName()
		data, err := io.ReadAll(io.LimitReader(part, limit+1))
		if err != nil {
			return ir, multipartError(err, h.cfg.MaxBodySize)
		}
		if part.FileName() != "" || name == "image" || name == "image[]" || name == "mask" {
			if int64(len(data)) > limit {
				return ir, apierror.ImageTooLarge(part.FileName(), int64(len(data))+1, limit)
			}
			u := dataURL(data, part.Header.Get("Content-Type"))
			if name == "mask" {
				ir.Mask = u
			} else {
				ir.Images = append(ir.Images, u)
			}
			continue
		}
		if e := setFormField(&ir, name, string(data)); e != nil {
			return ir, e
		}
	}
	return ir, nil
}

func multipartError(err error, limit int64) *apierror.Error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return apierror.RequestTooLarge(limit)
	}
	return apierror.InvalidBody("reading the multipart body failed: %v", err)
}

// dataURL makes a base64 data URL of an uploaded image, sniffing its type
// when the client sent none (or a generic one).
func dataURL(data []byte, ctype string) string {
	if ctype == "" || ctype == "application/octet-stream" || !strings.HasPrefix(ctype, "image/") {
		ctype = http.DetectContentType(data)
	}
	return "data:" + ctype + ";base64," + base64.StdEncoding.EncodeToString(data)
}

// setFormField sets one text field of a multipart Images request.
func setFormField(ir *translate.ImagesRequest, name, v string) *apierror.Error {
	v = strings.TrimSpace(v)
	num := func() (*int, *apierror.Error) {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, apierror.InvalidRequest(name, apierror.CodeInvalidValue, "Invalid value for '%s': %q is not an integer.", name, v)
		}
		return &n, nil
	}
	var e *apierror.Error
	switch name {
	case "prompt":
		ir.Prompt = v
	case "model":
		ir.Model = v
	case "size":
		ir.Size = v
	case "quality":
		ir.Quality = v
	case "background":
		ir.Background = v
	case "output_format":
		ir.OutputFormat = v
	case "moderation":
		ir.Moderation = v
	case "response_format":
		ir.ResponseFormat = v
	case "input_fidelity":
		ir.InputFidelity = v
	case "stream":
		ir.Stream = v == "true" || v == "1"
	case "n":
		ir.N, e = num()
	case "partial_images":
		ir.PartialImages, e = num()
	case "output_compression":
		ir.OutputCompression, e = num()
	}
	return e
}
