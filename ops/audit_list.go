package ops

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// AuditRequest selects audit entries (GET /codex_proxy/audit takes the
// same fields as query parameters). The zero value is the newest
// vault.DefaultAuditLimit entries.
type AuditRequest struct {
	// Since and Until bound the entries' times (Since inclusive).
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// Email keeps entries by or about that user (deleted users included).
	Email string `json:"email,omitempty"`
	// Action keeps one action (vault.AuditActions).
	Action vault.AuditAction `json:"action,omitempty"`
	// Actor keeps one kind of actor (user, admin, cli, admin-api).
	Actor string `json:"actor,omitempty"`
	// Before continues a listing: AuditResult.Next of the previous page.
	Before string `json:"before,omitempty"`
	// Limit bounds the page (default 100, at most 1000).
	Limit int `json:"limit,omitempty"`
}

// AuditResult is one page of entries, newest first.
type AuditResult struct {
	Entries []vault.AuditEntry `json:"entries"`
	// Next is the Before of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// Query is the request as URL query parameters, as the admin API reads
// them (times in RFC 3339).
func (q AuditRequest) Query() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	set("email", q.Email)
	set("action", string(q.Action))
	set("actor", q.Actor)
	set("before", q.Before)
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// ParseAuditRequest reads the query parameters of Query; since and until
// also take a duration back from now (24h, 7d).
func ParseAuditRequest(v url.Values, now time.Time) (AuditRequest, error) {
	q := AuditRequest{Email: v.Get("email"), Action: vault.AuditAction(v.Get("action")), Actor: v.Get("actor"), Before: v.Get("before")}
	var err error
	if q.Since, err = vault.ParseAuditTime(v.Get("since"), now); err != nil {
		return q, withStatus(http.StatusBadRequest, err)
	}
	if q.Until, err = vault.ParseAuditTime(v.Get("until"), now); err != nil {
		return q, withStatus(http.StatusBadRequest, err)
	}
	if s := v.Get("limit"); s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 0 {
			return q, errorf(http.StatusBadRequest, "limit %q is not a positive number", s)
		}
	}
	return q, nil
}

// check refuses what matches nothing by mistake: an unknown action or
// actor kind.
func (q AuditRequest) check() error {
	if q.Action != "" && !slices.Contains(vault.AuditActions, q.Action) {
		return errorf(http.StatusBadRequest, "unknown audit action %q (one of: %s)", q.Action, actionList())
	}
	switch q.Actor {
	case "", vault.ActorUser, vault.ActorAdmin, vault.ActorCLI, vault.ActorAdminAPI:
	default:
		return errorf(http.StatusBadRequest, "unknown actor kind %q (one of: user, admin, cli, admin-api)", q.Actor)
	}
	return nil
}

// actionList names every action for a message.
func actionList() string {
	s := ""
	for i, a := range vault.AuditActions {
		if i > 0 {
			s += ", "
		}
		s += string(a)
	}
	return s
}

// ListAudit implements [Service]: by email, entries by or about the user,
// who may have been deleted since.
func (l local) ListAudit(ctx context.Context, req AuditRequest) (AuditResult, error) {
	if err := req.check(); err != nil {
		return AuditResult{}, err
	}
	q := vault.AuditQuery{Since: req.Since, Until: req.Until, Action: req.Action, ActorKind: req.Actor,
		Before: req.Before, Limit: vault.AuditLimit(req.Limit)}
	if req.Email != "" {
		e, err := vault.NormalizeEmail(req.Email)
		if err != nil {
			return AuditResult{}, errorf(http.StatusBadRequest, "%q is not a valid email address", req.Email)
		}
		q.Email = e
		if u, err := l.v.UserByEmail(e); err == nil {
			q.UserID = u.ID
		}
	}
	// One more than the page tells whether there is a next one.
	want := q.Limit
	q.Limit++
	entries, err := l.v.AuditLog(ctx, q)
	if errors.Is(err, vault.ErrNoAuditStore) {
		return AuditResult{}, withStatus(http.StatusNotImplemented, err)
	}
	if err != nil {
		return AuditResult{}, err
	}
	res := AuditResult{Entries: entries}
	if len(entries) > want {
		res.Entries = entries[:want]
		res.Next = entries[want-1].ID
	}
	if res.Entries == nil {
		res.Entries = []vault.AuditEntry{}
	}
	return res, nil
}

// AuditCSVHeader is the first row WriteAuditCSV writes.
var AuditCSVHeader = []string{"time", "actor", "actor_email", "actor_os_user", "actor_via", "action", "detail",
	"target_email", "target_user_id", "target_key_id", "target_account_id", "source", "outcome", "reason", "id"}

// WriteAuditCSV writes entries as CSV (RFC 4180) with AuditCSVHeader.
// Cells that a spreadsheet would run as a formula (=, +, -, @ first) get
// a leading apostrophe: a reason or a label is the user's text.
func WriteAuditCSV(w io.Writer, entries []vault.AuditEntry) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(AuditCSVHeader); err != nil {
		return err
	}
	for _, e := range entries {
		row := []string{e.Time.UTC().Format(time.RFC3339Nano), e.Actor.Kind, e.Actor.Email, e.Actor.OSUser, e.Actor.Via, string(e.Action), e.Detail,
			e.Target.Email, e.Target.UserID, e.Target.KeyID, e.Target.AccountID, e.Source, e.Outcome, e.Reason, e.ID}
		for i, c := range row {
			if c != "" && (c[0] == '=' || c[0] == '+' || c[0] == '-' || c[0] == '@' || c[0] == '\t' || c[0] == '\r') {
				row[i] = "'" + c
			}
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
