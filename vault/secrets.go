package vault

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Names of the secret files LoadOrCreateSecrets keeps beside a bbolt vault.
const (
	EncryptionKeyFile = "encryption.key"
	PepperFile        = "api_key_pepper"
)

// LoadOrCreateSecrets returns the encryption key and API key pepper stored
// in dir (the directory of a bbolt vault), generating each missing one as
// 32 random bytes in a 0600 file, so that a first run needs no setup.
// generated reports that at least one file was created. An empty file is
// an error rather than a reason to generate: replacing a key would lock
// out every stored login.
func LoadOrCreateSecrets(dir string) (key, pepper string, generated bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", false, err
	}
	key, g1, err := loadOrCreate(filepath.Join(dir, EncryptionKeyFile))
	if err != nil {
		return "", "", false, err
	}
	pepper, g2, err := loadOrCreate(filepath.Join(dir, PepperFile))
	if err != nil {
		return "", "", false, err
	}
	return key, pepper, g1 || g2, nil
}

// loadOrCreate reads one secret file or creates it. O_EXCL makes two
// processes starting together agree on one value: the loser reads the
// winner's file.
func loadOrCreate(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, false, nil
		}
		return "", false, fmt.Errorf("%s is empty", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", false, err
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) { // another process won the race
			return loadOrCreate(path)
		}
		return "", false, err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", false, err
	}
	return s, true, f.Close()
}
