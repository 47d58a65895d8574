package caddymodule

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"

	"github.com/usemysub/caddy-codex-proxy/certstore"
)

func init() {
	caddy.RegisterModule(PostgresStorage{})
}

// PostgresStorage is the caddy.storage.codex_postgres module: Caddy's
// certificate storage (ACME accounts, certificates, keys, OCSP staples,
// challenge tokens and the locks around obtaining them) in PostgreSQL, so
// that every instance of a cluster shares them and only one orders a given
// certificate. Use the vault's database: its tables are prefixed
// (certmagic_ by default).
//
// Nothing connects while the config is loaded or validated; the first
// storage operation does.
type PostgresStorage struct {
	// DSN is a libpq connection string or postgres:// URL. Placeholders
	// such as {env.DATABASE_URL} are expanded. Its password never appears
	// in logs or errors.
	DSN string `json:"dsn,omitempty"`

	// TablePrefix names the tables <prefix>_data and <prefix>_schema.
	// Default: certmagic.
	TablePrefix string `json:"table_prefix,omitempty"`

	key   string // certStores key: the expanded DSN and the prefix
	store *certstore.Storage
}

// certStores shares one Storage (its pool and held locks) between the
// configs a reload swaps, as vaults does for vaults.
var certStores = caddy.NewUsagePool()

// pooledCertStore lets the usage pool close a Storage.
type pooledCertStore struct{ *certstore.Storage }

func (p pooledCertStore) Destruct() error { p.Close(); return nil }

// CaddyModule returns the Caddy module information.
func (PostgresStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.storage.codex_postgres",
		New: func() caddy.Module { return new(PostgresStorage) },
	}
}

// errNoDSN is Provision's error for a missing or empty dsn.
var errNoDSN = errors.New("codex_postgres storage: dsn is required (for example {env.DATABASE_URL})")

// Provision expands the DSN and prepares the storage without connecting.
func (s *PostgresStorage) Provision(ctx caddy.Context) error {
	dsn := caddy.NewReplacer().ReplaceKnown(s.DSN, "")
	if dsn == "" {
		return errNoDSN
	}
	s.key = s.TablePrefix + "\x00" + dsn
	val, _, err := certStores.LoadOrNew(s.key, func() (caddy.Destructor, error) {
		st, err := certstore.New(certstore.Config{
			DSN:         dsn,
			TablePrefix: s.TablePrefix,
			Logger:      ctx.Logger(),
		})
		if err != nil {
			return nil, err
		}
		return pooledCertStore{st}, nil
	})
	if err != nil {
		s.key = ""
		return fmt.Errorf("codex_postgres storage: %w", err)
	}
	s.store = val.(pooledCertStore).Storage
	return nil
}

// CertMagicStorage returns the storage; it connects at its first use.
func (s *PostgresStorage) CertMagicStorage() (certmagic.Storage, error) {
	if s.store == nil {
		return nil, errors.New("codex_postgres storage: not provisioned")
	}
	return s.store, nil
}

// Cleanup drops this config's reference; the last one closes the storage.
func (s *PostgresStorage) Cleanup() error {
	if s.key == "" {
		return nil
	}
	_, err := certStores.Delete(s.key)
	s.key = ""
	return err
}

// UnmarshalCaddyfile reads the global storage option:
//
//	storage codex_postgres <dsn>
//
//	storage codex_postgres {
//		dsn          <dsn>
//		table_prefix <prefix>
//	}
func (s *PostgresStorage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		s.DSN = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		opt := d.Val()
		var target *string
		switch opt {
		case "dsn":
			target = &s.DSN
		case "table_prefix":
			target = &s.TablePrefix
		default:
			return d.Errf("unrecognized codex_postgres option %q", opt)
		}
		if *target != "" {
			return d.Errf("%q given more than once", opt)
		}
		if !d.NextArg() {
			return d.ArgErr()
		}
		*target = d.Val()
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if s.DSN == "" {
		return d.Err("codex_postgres needs a dsn: storage codex_postgres {env.DATABASE_URL}")
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner      = (*PostgresStorage)(nil)
	_ caddy.CleanerUpper     = (*PostgresStorage)(nil)
	_ caddy.StorageConverter = (*PostgresStorage)(nil)
	_ caddyfile.Unmarshaler  = (*PostgresStorage)(nil)
)
