package relay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"

	"github.com/usemysub/caddy-codex-proxy/apierror"
	"github.com/usemysub/caddy-codex-proxy/codex"
	"github.com/usemysub/caddy-codex-proxy/translate"
)

// readFailure maps a broken upstream read to the error event the client
// gets. Causes are told apart by sentinel errors, never by message text:
// net/http's "server closed idle connection" is a dropped connection, not
// the proxy's idle timeout.
func readFailure(err error) *apierror.Error {
	e := &apierror.Error{Status: http.StatusBadGateway, Type: "server_error", Code: "upstream_stream_error"}
	switch {
	case errors.Is(err, codex.ErrIdleTimeout):
		e.Message = "the upstream sent nothing for too long and the stream was closed; retry the request"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		e.Message = "the upstream stream timed out; retry the request"
	case errors.Is(err, context.Canceled):
		e.Message = "the upstream stream was cancelled; retry the request"
	case errors.Is(err, translate.ErrEventTooLarge):
		e.Message = "the upstream sent an event larger than the proxy accepts"
	case errors.Is(err, io.ErrUnexpectedEOF):
		e.Message = "the upstream closed the connection mid-stream; retry the request"
	default:
		e.Message = "the upstream connection failed mid-stream; retry the request"
	}
	return e
}
