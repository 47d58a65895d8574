package dashboard

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// NotFound answers a path the dashboard does not have with its 404 page:
// a heading in plain words and the way back. caddymodule also calls it for
// paths outside /v1/ that no later handler answered, so a typo on the site
// is a page, not a blank 200.
func (d *Dashboard) NotFound(w http.ResponseWriter, r *http.Request) {
	d.securityHeaders(w, r)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	d.render(w, r, http.StatusNotFound, "notfound", pageData{Title: "Page not found", Body: notFoundBody{Path: quoteInput(r.URL.Path)}})
}

type notFoundBody struct {
	Path string
}

// ServeOrNotFound runs next, the rest of the server's handler chain, for a
// request outside /v1/ and the dashboard. If next writes nothing and
// returns no error (Caddy's end of the chain, which would answer an empty
// 200), the dashboard's 404 page answers instead.
func (d *Dashboard) ServeOrNotFound(w http.ResponseWriter, r *http.Request, next func(http.ResponseWriter, *http.Request) error) error {
	tw := &touchedWriter{ResponseWriter: w}
	if err := next(tw, r); err != nil || tw.touched {
		return err
	}
	d.NotFound(w, r)
	return nil
}

// touchedWriter records whether anything was written, flushed or hijacked.
// Unwrap lets http.ResponseController reach the connection's other
// capabilities.
type touchedWriter struct {
	http.ResponseWriter
	touched bool
}

func (t *touchedWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (t *touchedWriter) WriteHeader(code int) {
	t.touched = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *touchedWriter) Write(b []byte) (int, error) {
	t.touched = true
	return t.ResponseWriter.Write(b)
}

// ReadFrom keeps the underlying writer's sendfile path for file_server.
func (t *touchedWriter) ReadFrom(r io.Reader) (int64, error) {
	t.touched = true
	if rf, ok := t.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(t.ResponseWriter, r)
}

func (t *touchedWriter) Flush() {
	t.touched = true
	_ = http.NewResponseController(t.ResponseWriter).Flush()
}

func (t *touchedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	t.touched = true
	return http.NewResponseController(t.ResponseWriter).Hijack()
}
