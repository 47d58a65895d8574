package vault

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// ErrNotEmpty is what CopyStore fails with, wrapped in a *NotEmptyError,
// when the target already holds records and Replace is not set.
var ErrNotEmpty = errors.New("vault: the target already holds records")

// ErrNoExport is what CopyStore and VerifyCopy fail with when a store
// lacks the optional Exporter (or, for Replace, Importer) interface.
var ErrNoExport = errors.New("vault: the storage engine cannot export or import a full copy")

// NotEmptyError says what a non-empty target holds.
type NotEmptyError struct {
	Counts Counts
}

// Error lists the kinds the target holds, e.g. "3 users, 120 request log".
func (e *NotEmptyError) Error() string {
	return ErrNotEmpty.Error() + ": " + e.Counts.String()
}

// Unwrap makes errors.Is(err, ErrNotEmpty) hold.
func (e *NotEmptyError) Unwrap() error { return ErrNotEmpty }

// String lists the non-zero counts in Kinds order ("nothing" if none).
func (c Counts) String() string {
	var parts []string
	for _, k := range Kinds {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c[k], k))
		}
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// CopyOptions configures CopyStore. The zero value works.
type CopyOptions struct {
	// Replace empties a non-empty target first (it must be an Importer)
	// instead of refusing with a *NotEmptyError.
	Replace bool
	// LogBatch is how many request-log records one write carries
	// (default 1000).
	LogBatch int
}

// CopyStore copies every record of src into dst: users, API keys with
// their policies and usage reset points, sealed token bundles as they are
// (nothing is decrypted), dashboard sessions, login tokens, OAuth flows,
// quota snapshots, the request log with its exact times and order, and
// the usage roll-ups as stored. src must be an Exporter; dst is written
// through the core Store interface, so its engine's own checks apply.
// It returns how many records of each kind it wrote. dst must be empty
// (else a *NotEmptyError) unless o.Replace.
//
// The copy is not one transaction: a failure leaves dst partly written,
// and running again with Replace starts over. Nothing may write to src
// meanwhile (for bbolt, its file lock keeps a running Caddy out).
func CopyStore(ctx context.Context, src, dst Store, o CopyOptions) (Counts, error) {
	ex, ok := src.(Exporter)
	if !ok {
		return nil, fmt.Errorf("%w (source)", ErrNoExport)
	}
	if o.LogBatch <= 0 {
		o.LogBatch = 1000
	}
	if err := prepareTarget(ctx, dst, o.Replace); err != nil {
		return nil, err
	}
	n := Counts{}
	step := func(kind Kind, fn func() (int, error)) error {
		c, err := fn()
		n[kind] = c
		if err != nil {
			return fmt.Errorf("copying %s (after %d): %w", kind, c, err)
		}
		return nil
	}
	steps := []struct {
		kind Kind
		fn   func() (int, error)
	}{
		{KindUsers, func() (int, error) {
			users, err := src.ListUsers(ctx)
			return putAll(users, err, func(u User) error { return dst.CreateUser(ctx, u) })
		}},
		{KindKeys, func() (int, error) {
			keys, err := src.ListAllKeys(ctx)
			return putAll(keys, err, func(k KeyRecord) error { return dst.CreateKey(ctx, k) })
		}},
		{KindTokens, func() (int, error) {
			all, err := src.ListTokens(ctx)
			return putAll(sortedRefs(all), err, func(ref AccountRef) error {
				rec := all[ref]
				return dst.UpdateTokens(ctx, ref.UserID, ref.ID, func(*TokenRecord) (*TokenRecord, error) { return &rec, nil })
			})
		}},
		{KindSessions, func() (int, error) {
			all, err := ex.ExportSessions(ctx)
			return putAll(all, err, func(e SessionEntry) error { return dst.PutSession(ctx, e.Key, e.SessionRecord) })
		}},
		{KindLoginTokens, func() (int, error) {
			all, err := ex.ExportLoginTokens(ctx)
			return putAll(all, err, func(e LoginEntry) error { return dst.PutLoginToken(ctx, e.Key, e.LoginRecord) })
		}},
		{KindOAuthSessions, func() (int, error) {
			all, err := ex.ExportOAuthSessions(ctx)
			return putAll(all, err, func(e OAuthEntry) error { return dst.PutOAuthSession(ctx, e.Key, e.OAuthRecord) })
		}},
		{KindQuotas, func() (int, error) {
			all, err := src.ListQuotas(ctx)
			if err != nil || len(all) == 0 {
				return 0, err
			}
			return len(all), dst.PutQuotas(ctx, all)
		}},
		{KindRequestLogs, func() (int, error) { return copyLogs(ctx, ex, dst, o.LogBatch) }},
		{KindUsage, func() (int, error) {
			// Into an empty store, adding each stored roll-up as a delta
			// recreates it exactly.
			all, err := ex.ExportUsage(ctx)
			if err != nil || len(all) == 0 {
				return 0, err
			}
			return len(all), dst.AppendLogs(ctx, nil, all)
		}},
	}
	for _, s := range steps {
		if err := step(s.kind, s.fn); err != nil {
			return n, err
		}
	}
	return n, nil
}

// prepareTarget refuses a non-empty dst, or empties it when replace.
func prepareTarget(ctx context.Context, dst Store, replace bool) error {
	dex, ok := dst.(Exporter)
	if !ok {
		return fmt.Errorf("%w (target)", ErrNoExport)
	}
	have, err := dex.Count(ctx)
	if err != nil {
		return fmt.Errorf("counting the target's records: %w", err)
	}
	if have.Total() == 0 {
		return nil
	}
	if !replace {
		return &NotEmptyError{Counts: have}
	}
	imp, ok := dst.(Importer)
	if !ok {
		return fmt.Errorf("%w (target)", ErrNoExport)
	}
	if err := imp.DeleteAll(ctx); err != nil {
		return fmt.Errorf("emptying the target: %w", err)
	}
	return nil
}

// putAll writes each item with put, stopping at the first error, and
// returns how many it wrote.
func putAll[T any](items []T, err error, put func(T) error) (int, error) {
	if err != nil {
		return 0, err
	}
	for i, it := range items {
		if err := put(it); err != nil {
			return i, err
		}
	}
	return len(items), nil
}

// copyLogs pages through src's request log and appends each page as one
// batch, with no usage deltas: the roll-ups are copied as stored.
func copyLogs(ctx context.Context, src Exporter, dst Store, batch int) (int, error) {
	total, pos := 0, ""
	for {
		recs, next, err := src.ExportLogs(ctx, pos, batch)
		if err != nil {
			return total, err
		}
		if len(recs) > 0 {
			if err := dst.AppendLogs(ctx, recs, nil); err != nil {
				return total, err
			}
		}
		total += len(recs)
		if len(recs) < batch {
			return total, nil
		}
		pos = next
	}
}

// sortedKeys returns m's keys in order, so copies run the same each time.
// sortedRefs is the accounts of m in a stable order.
func sortedRefs[V any](m map[AccountRef]V) []AccountRef {
	out := make([]AccountRef, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Verification is what VerifyCopy found, per kind.
type Verification struct {
	// Source and Target are the record counts of each side.
	Source, Target Counts
	// Matched counts the target's records equal to their source record
	// (times compared to the microsecond).
	Matched Counts
	// Problems names records missing or different, by id only (never a
	// secret or a hash); at most a few per kind.
	Problems []string
}

// OK reports whether every kind matched completely.
func (v Verification) OK() bool {
	for _, k := range Kinds {
		if v.Source[k] != v.Target[k] || v.Matched[k] != v.Source[k] {
			return false
		}
	}
	return len(v.Problems) == 0
}

// maxProblems bounds the problems listed per kind.
const maxProblems = 5

// VerifyCopy reads both stores back and compares them record by record:
// counts per kind, and each target record against its source record.
// Both stores must be Exporters.
func VerifyCopy(ctx context.Context, src, dst Store) (Verification, error) {
	sx, ok1 := src.(Exporter)
	dx, ok2 := dst.(Exporter)
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
	v.Matched = Counts{}
	compare := func(kind Kind, a, b map[string]string, err error) error {
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
	both := func(read func(Store) (map[string]string, error)) (map[string]string, map[string]string, error) {
		a, err := read(src)
		if err != nil {
			return nil, nil, err
		}
		b, err := read(dst)
		return a, b, err
	}
	checks := []struct {
		kind Kind
		read func(Store) (map[string]string, error)
	}{
		{KindUsers, func(s Store) (map[string]string, error) {
			all, err := s.ListUsers(ctx)
			return canonBy(all, err, func(u User) string { return u.ID })
		}},
		{KindKeys, func(s Store) (map[string]string, error) {
			all, err := s.ListAllKeys(ctx)
			return canonBy(all, err, func(k KeyRecord) string { return k.ID })
		}},
		{KindTokens, func(s Store) (map[string]string, error) {
			all, err := s.ListTokens(ctx)
			return canonMap(all, err)
		}},
		{KindSessions, func(s Store) (map[string]string, error) {
			all, err := s.(Exporter).ExportSessions(ctx)
			return canonBy(all, err, func(e SessionEntry) string { return "session " + hex.EncodeToString(e.Key) })
		}},
		{KindLoginTokens, func(s Store) (map[string]string, error) {
			all, err := s.(Exporter).ExportLoginTokens(ctx)
			return canonBy(all, err, func(e LoginEntry) string { return "login token " + hex.EncodeToString(e.Key) })
		}},
		{KindOAuthSessions, func(s Store) (map[string]string, error) {
			all, err := s.(Exporter).ExportOAuthSessions(ctx)
			return canonBy(all, err, func(e OAuthEntry) string { return "oauth flow " + hex.EncodeToString(e.Key) })
		}},
		{KindQuotas, func(s Store) (map[string]string, error) {
			all, err := s.ListQuotas(ctx)
			return canonMap(all, err)
		}},
		{KindUsage, func(s Store) (map[string]string, error) {
			all, err := s.(Exporter).ExportUsage(ctx)
			return canonBy(all, err, func(d UsageDelta) string { return d.UserID + " " + d.Day.Format(dayLayout) })
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
func verifyLogs(ctx context.Context, src, dst Exporter, v *Verification) error {
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
				v.Matched[KindRequestLogs]++
			} else if bad < maxProblems {
				v.Problems = append(v.Problems, fmt.Sprintf("%s: record %d (request %s at %s) is missing or differs in the target",
					KindRequestLogs, i+j+1, a[j].RequestID, a[j].Time.Format("2006-01-02T15:04:05.000000Z")))
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
