package storetest

import (
	"testing"

	"github.com/usemysub/caddy-codex-proxy/vault"
)

// settings asserts s keeps operator settings (both engines here do).
func settings(t *testing.T, s vault.Store) vault.SettingStore {
	t.Helper()
	ss, ok := s.(vault.SettingStore)
	if !ok {
		t.Skipf("%T does not implement the optional vault.SettingStore", s)
	}
	return ss
}

// testSettings: none is ErrNotFound; put, replace, export and delete
// round trip; values survive a reopen and a DeleteUser of anyone.
func testSettings(t *testing.T, h *harness) {
	s := h.store()
	ss := settings(t, s)
	_, err := ss.GetSetting(ctx, "signup")
	wantErr(t, "GetSetting of none", err, vault.ErrNotFound)
	must(t, ss.DeleteSetting(ctx, "signup")) // none: no error

	must(t, ss.PutSetting(ctx, "signup", []byte(`{"mode":"open"}`)))
	must(t, ss.PutSetting(ctx, "signup", []byte(`{"mode":"closed"}`)))
	must(t, ss.PutSetting(ctx, "other", []byte{}))
	got, err := ss.GetSetting(ctx, "signup")
	must(t, err)
	same(t, "replaced setting", string(got), `{"mode":"closed"}`)
	all, err := ss.ExportSettings(ctx)
	must(t, err)
	same(t, "ExportSettings", len(all), 2)
	same(t, "exported signup", string(all["signup"]), `{"mode":"closed"}`)
	same(t, "exported empty value", len(all["other"]), 0)

	mustUser(t, s, "u-a", "a@example.com")
	must(t, s.DeleteUser(ctx, "u-a"))
	must(t, closeOnce(s))
	s = h.store()
	ss = settings(t, s)
	got, err = ss.GetSetting(ctx, "signup")
	must(t, err)
	same(t, "setting after reopen", string(got), `{"mode":"closed"}`)

	must(t, ss.DeleteSetting(ctx, "signup"))
	_, err = ss.GetSetting(ctx, "signup")
	wantErr(t, "GetSetting after DeleteSetting", err, vault.ErrNotFound)
	all, err = ss.ExportSettings(ctx)
	must(t, err)
	same(t, "settings left", len(all), 1)
}
