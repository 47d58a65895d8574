package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/keypolicy"
	"github.com/usemysub/caddy-codex-proxy/relay"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Routes of the Images API.
const (
	routeImageGenerations = "image_generations"
	routeImageEdits       = "image_edits"
)

// imagesDialect is the Images API: one image per upstream turn, answered
// as data[].b64_json, or streamed as image_generation.* / image_edit.*
// events.
type imagesDialect struct{ edit bool }

func (imagesDialect) parse([]byte, translate.RequestOptions) (*translate.Mapped, error) {
	// Never called: serveImages reads and maps an Images request itself.
	return nil, apierror.Internal("an Images request reached the generic parser")
}

func (imagesDialect) aggregate(_ *translate.Mapped, up io.Reader) ([]byte, translate.StreamResult) {
	img, res := translate.CollectImage(up)
	if res.Err != nil {
		return nil, res
	}
	return translate.ImagesAnswer([]translate.ImageResult{img}, res.Usage), res
}

func (d imagesDialect) stream(*translate.Mapped) relay.Translator {
	return &translate.ImagesStream{Edit: d.edit}
}

// serveImages is POST /v1/images/generations (edit false) and
// /v1/images/edits: the key's image policy, then the body (JSON or
// multipart, each input image under the cap), mapped onto a Responses turn
// with the image_generation tool, and the generation pipeline from there.
// n > 1 images are n upstream turns, run side by side as far as the key's
// concurrency limit allows.
func serveImages(edit bool) func(h *Handler, w http.ResponseWriter, r *http.Request, req *request) outcome {
	return func(h *Handler, w http.ResponseWriter, r *http.Request, req *request) outcome {
		if refused := keypolicy.CheckImages(req.key.Policy); refused != nil {
			req.hold.Refund() // refused before its body was read: counts nothing
			return h.refuse(w, refused)
		}
		ir, bad := h.readImagesRequest(w, r, edit)
		if bad != nil {
			return h.reject(w, bad, 0)
		}
		m, err := translate.ImagesToResponses(ir, translate.ImagesOptions{Model: h.cfg.Images.Model, CacheKeySalt: req.user.ID})
		if out, ok := h.admitMapped(w, req, m, err); !ok {
			return out
		}
		d := imagesDialect{edit: edit}
		n := ir.Count()
		if n == 1 {
			return h.generateMapped(w, r, req, d)
		}
		if ir.Stream {
			return h.reject(w, apierror.InvalidRequest("n", apierror.CodeInvalidValue,
				"Streaming makes one image at a time here: send n=1 with stream, or n up to %d without.", translate.MaxImages), 0)
		}
		return h.generateImages(w, r, req, n)
	}
}

// generateImages makes n images as n upstream turns. The request's own
// slot runs one; each further slot the key's concurrency limit grants runs
// another side by side, and the rest wait for a free worker. One record
// counts every turn's tokens.
func (h *Handler) generateImages(w http.ResponseWriter, r *http.Request, req *request, n int) outcome {
	m := req.mapped
	workers := 1
	for workers < n {
		extra, refused := h.cfg.Keys.AdmitKeyHold(req.key, 0)
		if refused != nil {
			break
		}
		defer extra.Refund() // the request's own record counts the tokens
		workers++
	}
	req.hold.Reserve(int64(n) * translate.EstimateTokens(int64(len(m.Body))))
	type result struct {
		img     translate.ImageResult
		res     translate.StreamResult
		err     error
		account string
		sent    bool
	}
	results := make([]result, n)
	jobs := make(chan int)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				sub := &request{id: req.id, route: req.route, start: req.start, user: req.user, key: req.key, mapped: m}
				upStart := time.Now()
				up, err := h.send(ctx, sub, m.Body, codex.RequestHeaders{PromptCacheKey: m.PromptCacheKey, RequestID: req.id})
				h.obs.UpstreamLatency(time.Since(upStart))
				results[i].account = sub.account
				if err != nil {
					results[i].err, results[i].sent = err, mayHaveRun(err)
					cancel() // one failure fails the request: stop the others
					continue
				}
				results[i].sent = true
				results[i].img, results[i].res = translate.CollectImage(up)
				up.Close()
				if results[i].res.Err != nil {
					cancel()
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()

	out := outcome{}
	var images []translate.ImageResult
	for _, res := range results {
		out.result.Usage = addUsage(out.result.Usage, res.res.Usage)
		out.sent = out.sent || res.sent
		if req.account == "" {
			req.account = res.account
		}
	}
	for _, res := range results {
		switch {
		case res.err != nil && !errors.Is(res.err, context.Canceled):
			failed := h.upstreamFailed(w, r.Context(), req, res.err)
			failed.result, failed.sent = out.result, out.sent
			return failed
		case res.res.Err != nil:
			failed := h.reject(w, res.res.Err, 0)
			failed.result, failed.sent = out.result, out.sent
			return failed
		}
		images = append(images, res.img)
	}
	if r.Context().Err() != nil {
		out.status = relay.ClientGone
		return out
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(translate.ImagesAnswer(images, out.result.Usage))
	out.status, out.result.Completed, out.ttfb = http.StatusOK, true, time.Since(req.start)
	return out
}

// addUsage sums two turns' usage.
func addUsage(a, b translate.Usage) translate.Usage {
	return translate.Usage{InputTokens: a.InputTokens + b.InputTokens, OutputTokens: a.OutputTokens + b.OutputTokens,
		CachedTokens: a.CachedTokens + b.CachedTokens, ReasoningTokens: a.ReasoningTokens + b.ReasoningTokens,
		TotalTokens: a.TotalTokens + b.TotalTokens, ImageInputTokens: a.ImageInputTokens + b.ImageInputTokens,
		ImageOutputTokens: a.ImageOutputTokens + b.ImageOutputTokens}
}
