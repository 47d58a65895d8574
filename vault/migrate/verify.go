package migrate

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// Verification is what Verify found, per kind.
type Verification struct {
	// Source and Target are the record counts of each side.
	Source, Target vault.Counts
	// Matched counts the target's records equal to their source record
	// (times compared to the microsecond).
	Matched vault.Counts
	// Problems names records missing or different, by id only (never a
	// secret or a hash); at most a few per kind.
	Problems []string
}

// OK reports whether every kind matched completely.
func (v Verification) OK() bool {
	for _, k := range vault.Kinds {
		if v.Source[k] != v.Target[k] || v.Matched[k] != v.Source[k] {
			return false
		}
	}
	return len(v.Problems) == 0
}

// maxProblems bounds the problems listed per kind.
const maxProblems = 5

// Verify reads both stores back and compares them record by record:
// counts per kind, and each target record against its source record.
// Both stores must be Exporters.
func Verify(ctx context.Context, src, dst vault.Store) (Verification, error) {
	sx, ok1 := src.(vault.Exporter)
	dx, ok2 := dst.(vault.Exporter)
	if !ok1 || !ok2 {
		return Verification{}, ErrNoExport
	}
	var v Verification
	var err error
	if v.Source, err = sx.Count(ctx); err != nil {
		return v, fmt.Errorf("counting the source: %w", err)
	}
	if v.Target, err = dx.Count(ctx); err != nil {
		return v, fmt.Errorf("counting the target: %w", err)
	}
	v.Matched = vault.Counts{}
	compare := func(kind vault.Kind, a, b map[string]string, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s: %w", kind, err)
		}
		bad := 0
		for _, id := range sortedKeys(a) {
			got, ok := b[id]
			switch {
			case ok && got == a[id]:
				v.Matched[kind]++
				continue
			case bad >= maxProblems:
			case !ok:
				v.Problems = append(v.Problems, fmt.Sprintf("%s: %s is missing from the target", kind, id))
			default:
				v.Problems = append(v.Problems, fmt.Sprintf("%s: %s differs", kind, id))
			}
			bad++
		}
		return nil
	}
	both := func(read func(vault.Store) (map[string]string, error)) (map[string]string, map[string]string, error) {
		a, err := read(src)
		if err != nil {
			return nil, nil, err
		}
		b, err := read(dst)
		return a, b, err
	}
	checks := []struct {
		kind vault.Kind
		read func(vault.Store) (map[string]string, error)
	}{
		{vault.KindUsers, func(s vault.Store) (map[string]string, error) {
			all, err := s.ListUsers(ctx)
			return canonBy(all, err, func(u vault.User) string { return u.ID })
		}},
		{vault.KindKeys, func(s vault.Store) (map[string]string, error) {
			all, err := s.ListAllKeys(ctx)
			return canonBy(all, err, func(k vault.KeyRecord) string { return k.ID })
		}},
		{vault.KindTokens, func(s vault.Store) (map[string]string, error) {
			all, err := s.ListTokens(ctx)
			return canonMap(all, err)
		}},
		{vault.KindSessions, func(s vault.Store) (map[string]string, error) {
			all, err := s.(vault.Exporter).ExportSessions(ctx)
			return canonBy(all, err, func(e vault.SessionEntry) string { return "session " + hex.EncodeToString(e.Key) })
		}},
		{vault.KindLoginTokens, func(s vault.Store) (map[string]string, error) {
			all, err := s.(vault.Exporter).ExportLoginTokens(ctx)
			return canonBy(all, err, func(e vault.LoginEntry) string { return "login token " + hex.EncodeToString(e.Key) })
		}},
		{vault.KindOAuthSessions, func(s vault.Store) (map[string]string, error) {
			all, err := s.(vault.Exporter).ExportOAuthSessions(ctx)
			return canonBy(all, err, func(e vault.OAuthEntry) string { return "oauth flow " + hex.EncodeToString(e.Key) })
		}},
		{vault.KindQuotas, func(s vault.Store) (map[string]string, error) {
			all, err := s.ListQuotas(ctx)
			return canonMap(all, err)
		}},
		{vault.KindUsage, func(s vault.Store) (map[string]string, error) {
			all, err := s.(vault.Exporter).ExportUsage(ctx)
			return canonBy(all, err, func(d vault.UsageDelta) string { return d.UserID + " " + d.Day.Format(dayLayout) })
		}},
		{vault.KindResponses, func(s vault.Store) (map[string]string, error) {
			rs, ok := s.(vault.ResponseStore)
			if !ok {
				return map[string]string{}, nil
			}
			all, err := rs.ExportResponses(ctx)
			for i := range all {
				// A set, which engines may keep in any order, and none is none.
				all[i].ItemIDs = slices.Sorted(slices.Values(all[i].ItemIDs))
			}
			return canonBy(all, err, func(r vault.ResponseRecord) string { return "response " + r.UserID + "/" + r.ID })
		}},
		{vault.KindSettings, func(s vault.Store) (map[string]string, error) {
			ss, ok := s.(vault.SettingStore)
			if !ok {
				return map[string]string{}, nil
			}
			all, err := ss.ExportSettings(ctx)
			return canonMap(all, err)
		}},
		{vault.KindAudit, func(s vault.Store) (map[string]string, error) {
			as, ok := s.(vault.AuditStore)
			if !ok {
				return map[string]string{}, nil
			}
			all, err := as.ExportAudit(ctx)
			return canonBy(all, err, func(e vault.AuditEntry) string { return "audit entry " + e.ID })
		}},
	}
	for _, c := range checks {
		a, b, err := both(c.read)
		if err := compare(c.kind, a, b, err); err != nil {
			return v, err
		}
	}
	if err := verifyLogs(ctx, sx, dx, &v); err != nil {
		return v, err
	}
	return v, nil
}

// verifyLogs walks both request logs in step and compares them pairwise:
// a copy keeps the order.
func verifyLogs(ctx context.Context, src, dst vault.Exporter, v *Verification) error {
	const page = 1000
	var ps, pd string
	bad, i := 0, 0
	for {
		a, ns, err := src.ExportLogs(ctx, ps, page)
		if err != nil {
			return fmt.Errorf("reading the source's request log: %w", err)
		}
		b, nd, err := dst.ExportLogs(ctx, pd, page)
		if err != nil {
			return fmt.Errorf("reading the target's request log: %w", err)
		}
		for j := range a {
			if j < len(b) && canon(a[j]) == canon(b[j]) {
				v.Matched[vault.KindRequestLogs]++
			} else if bad < maxProblems {
				v.Problems = append(v.Problems, fmt.Sprintf("%s: record %d (request %s at %s) is missing or differs in the target",
					vault.KindRequestLogs, i+j+1, a[j].RequestID, a[j].Time.Format("2006-01-02T15:04:05.000000Z")))
				bad++
			}
		}
		i += len(a)
		if len(a) < page {
			return nil
		}
		ps, pd = ns, nd
	}
}

// fracSeconds matches the fraction of an RFC 3339 time in JSON.
var fracSeconds = regexp.MustCompile(`(T\d\d:\d\d:\d\d)\.(\d+)(Z|[+-]\d\d:\d\d)"`)

// canon is v's JSON with times cut to the microsecond (a server engine
// keeps no more), the form two records are compared in.
func canon(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "unencodable: " + err.Error()
	}
	return fracSeconds.ReplaceAllStringFunc(string(b), func(m string) string {
		s := fracSeconds.FindStringSubmatch(m)
		frac := s[2]
		if len(frac) > 6 {
			frac = frac[:6]
		}
		if frac = strings.TrimRight(frac, "0"); frac != "" {
			frac = "." + frac
		}
		return s[1] + frac + s[3] + `"`
	})
}

// canonBy indexes items by id in their canonical form.
func canonBy[T any](items []T, err error, id func(T) string) (map[string]string, error) {
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(items))
	for _, it := range items {
		out[id(it)] = canon(it)
	}
	return out, nil
}

// canonMap is canonBy for records already keyed by user id.
func canonMap[K comparable, V any](m map[K]V, err error) (map[string]string, error) {
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[fmt.Sprint(k)] = canon(v)
	}
	return out, nil
}

// dayLayout is how a usage roll-up's day is named (as the engines key it).
const dayLayout = "2006-01-02"
