package caddymodule

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// backup answers GET /codex_proxy/backup?vault=<path>: a consistent copy
// of the open bbolt vault file, streamed from one read transaction while
// the proxy keeps serving. The admin endpoint is local-only; the file
// holds sealed tokens and hashed keys, never a plaintext secret.
func (a adminAPI) backup(w http.ResponseWriter, r *http.Request) error {
	if err := allow(w, r, http.MethodGet); err != nil {
		return err
	}
	v, release, err := a.acquire(r.URL.Query().Get("vault"))
	if err != nil {
		return err
	}
	defer release()
	cw := &countingWriter{w: w, before: func() {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Disposition", `attachment; filename="vault.db"`)
		w.WriteHeader(http.StatusOK)
	}}
	n, err := v.Backup(cw)
	switch {
	case errors.Is(err, vault.ErrNoFileBackup):
		return apiErr(http.StatusBadRequest, errors.New("this vault is on PostgreSQL: back it up with pg_dump"))
	case err != nil && cw.n == 0:
		return apiErr(http.StatusInternalServerError, fmt.Errorf("backup: %v", err))
	case err != nil:
		// The status is sent: end the body short, so the client sees a
		// broken transfer instead of a truncated file that looks whole.
		caddy.Log().Named("admin.api.codex_proxy").Error("vault backup failed mid-stream", zap.Int64("bytes_sent", n), zap.Error(err))
		panic(http.ErrAbortHandler)
	}
	return nil
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
