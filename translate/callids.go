package translate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MaxCallIDLen is the longest tool-call id the upstream accepts ("string too
// long … maximum length 64" otherwise).
const MaxCallIDLen = 64

// callIDPrefix starts every shortened call id. Followed by 40 hex digits
// (160 bits of sha256) it makes ids that cannot be confused with anything
// else in an event, so restoring them is a plain replacement.
const callIDPrefix = "call_sh_"

// ShortenCallID returns id unchanged when it fits MaxCallIDLen bytes; a
// longer id becomes "call_sh_" and 40 hex digits of sha256(id). It is a pure
// function of the id, so the same long id maps to the same short one in
// every request of a conversation, and a call and its output stay paired.
func ShortenCallID(id string) string {
	if len(id) <= MaxCallIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return callIDPrefix + hex.EncodeToString(sum[:20])
}

// CallIDs maps shortened upstream call ids back to the client's. Only ids
// that were changed have an entry, so a request without long ids has a nil
// map and restoring costs nothing.
type CallIDs map[string]string

// Restore returns the client's id for an upstream call id; ids that were not
// shortened are returned unchanged. A nil map is valid.
func (c CallIDs) Restore(upstream string) string {
	if orig, ok := c[upstream]; ok {
		return orig
	}
	return upstream
}

// shorten returns the upstream id for a client call id and records the
// mapping when the id changes. *c is allocated on first use.
func (c *CallIDs) shorten(id string) string {
	short := ShortenCallID(id)
	if short != id {
		if *c == nil {
			*c = make(CallIDs)
		}
		(*c)[short] = id
	}
	return short
}

// restoreText puts the client's ids back into plain text, such as an
// upstream error message ("No tool output found for function call …").
func (c CallIDs) restoreText(s string) string {
	for short, orig := range c {
		if strings.Contains(s, short) {
			s = strings.ReplaceAll(s, short, orig)
		}
	}
	return s
}

// restoreIn puts the client's ids back into raw JSON event data, wherever
// they occur: call_id fields and messages alike. The long id is inserted
// JSON-escaped. Nothing is copied when no id was shortened or none occurs.
func (c CallIDs) restoreIn(data []byte) []byte {
	if len(c) == 0 {
		return data
	}
	for short, orig := range c {
		if bytes.Contains(data, []byte(short)) {
			q := appendQuoted(nil, orig)
			data = bytes.ReplaceAll(data, []byte(short), q[1:len(q)-1])
		}
	}
	return data
}

// RestoreError returns e with shortened call ids in its message replaced by
// the client's; e itself is returned when there is nothing to replace.
func (c CallIDs) RestoreError(e *Error) *Error {
	if len(c) == 0 || e == nil {
		return e
	}
	msg := c.restoreText(e.Message)
	if msg == e.Message {
		return e
	}
	cp := *e
	cp.Message = msg
	return &cp
}
