package api

import (
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/usemysub/caddy-codex-proxy/apierror"
)

// readBody reads the request body, decoding gzip, br and zstd (the Codex CLI
// can send zstd), and enforces the size limit on the decoded bytes so a small
// compressed body cannot expand without bound. w lets net/http close the
// connection after an oversized body instead of reading the rest of it.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apierror.Error) {
	var src io.Reader = http.MaxBytesReader(w, r.Body, limit)
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, apierror.InvalidBody("the request body is not valid gzip: %v", err)
		}
		defer zr.Close()
		src = zr
	case "br":
		src = brotli.NewReader(src)
	case "zstd":
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(limit)+1<<20))
		if err != nil {
			return nil, apierror.InvalidBody("the request body is not valid zstd: %v", err)
		}
		defer zr.Close()
		src = zr
	default:
		return nil, apierror.UnsupportedEncoding(enc)
	}
	body, err := io.ReadAll(io.LimitReader(src, limit+1))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) && r.ProtoMajor == 1 {
		// The rest of the body is still on the wire. MaxBytesReader tells
		// net/http to close the connection only when w is its own writer,
		// and a server in front (Caddy) may wrap it, so say it in the
		// header too.
		w.Header().Set("Connection", "close")
	}
	if tooBig != nil || int64(len(body)) > limit {
		return nil, apierror.RequestTooLarge(limit)
	}
	if err != nil {
		return nil, apierror.InvalidBody("reading the request body failed: %v", err)
	}
	if len(body) == 0 {
		return nil, apierror.InvalidBody("the request body is empty; send a JSON object")
	}
	return body, nil
}
