package ops

import "net/http"

// backup answers GET /codex_proxy/backup?vault=<path>: a consistent copy
// of the open bbolt vault file, streamed from one read transaction while
// the proxy keeps serving. The admin endpoint is local-only; the file
// holds sealed tokens and hashed keys, never a plaintext secret.
func (a *AdminHandler) backup(w http.ResponseWriter, r *http.Request) error {
	v, release, err := AcquireVault(a.vaults, r.URL.Query().Get("vault"))
	if err != nil {
		return err
	}
	defer release()
	// The headers wait for the first byte, so a backup that fails at once
	// can still be an error answer.
	cw := &countingWriter{w: w, before: func() {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Disposition", `attachment; filename="vault.db"`)
		w.WriteHeader(http.StatusOK)
	}}
	n, err := Local(v).Backup(r.Context(), cw)
	switch {
	case err == nil:
		return nil
	case cw.n == 0 && StatusOf(err) < http.StatusInternalServerError:
		return err
	case cw.n == 0:
		return errorf(http.StatusInternalServerError, "backup: %w", err)
	}
	// The status is sent: end the body short, so the client sees a broken
	// transfer instead of a truncated file that looks whole.
	a.log.Error("vault backup failed mid-stream", "bytes_sent", n, "error", err)
	panic(http.ErrAbortHandler)
}

// countingWriter counts bytes and runs before once ahead of the first.
type countingWriter struct {
	w      http.ResponseWriter
	before func()
	n      int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.n == 0 && c.before != nil {
		c.before()
		c.before = nil
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
