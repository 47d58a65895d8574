package relay

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// Aggregator reads a whole upstream stream into one client response body:
// translate.AggregateChat or translate.AggregateResponses with the
// request's options.
type Aggregator func(up io.Reader) ([]byte, translate.StreamResult)

// Complete answers a non-streaming request: it aggregates the upstream
// stream and writes one JSON body, or the failure with its real status.
// ctx is the client request's context; the caller closes up.
func Complete(ctx context.Context, w http.ResponseWriter, up io.ReadCloser, agg Aggregator, start time.Time) Outcome {
	out, res := agg(up)
	if res.Err != nil {
		if ctx.Err() != nil {
			// The client left (or timed out) while the answer was being
			// collected: what went by is still charged.
			res.Err = nil
			return Outcome{Status: ClientGone, Result: res}
		}
		apierror.Write(w, res.Err)
		return Outcome{Status: res.Err.Status, Result: res}
	}
	drainFinished(up)
	o := Outcome{Status: http.StatusOK, Result: res, TTFB: time.Since(start)}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return o
}
