package vault

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	key, pepper, generated, err := LoadOrCreateSecrets(dir)
	if err != nil || !generated {
		t.Fatalf("first call: generated=%v err=%v", generated, err)
	}
	if key == "" || pepper == "" || key == pepper {
		t.Fatalf("key %q pepper %q", key, pepper)
	}
	if err := CheckKeys([]string{key}); err != nil {
		t.Errorf("generated key is not usable: %v", err)
	}
	for _, name := range []string{EncryptionKeyFile, PepperFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("directory: %v %v, want 0700", fi.Mode().Perm(), err)
	}

	key2, pepper2, generated, err := LoadOrCreateSecrets(dir)
	if err != nil || generated || key2 != key || pepper2 != pepper {
		t.Fatalf("second call changed the secrets: generated=%v err=%v", generated, err)
	}
}

func TestLoadOrCreateSecretsKeepsOneAndMakesTheOther(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, PepperFile), []byte("  my-pepper\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, pepper, generated, err := LoadOrCreateSecrets(dir)
	if err != nil || !generated || pepper != "my-pepper" {
		t.Fatalf("pepper %q generated=%v err=%v", pepper, generated, err)
	}
}

func TestLoadOrCreateSecretsRefusesAnEmptyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, EncryptionKeyFile), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := LoadOrCreateSecrets(dir)
	if err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty key file: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, EncryptionKeyFile)); string(b) != "\n" {
		t.Errorf("the empty file was replaced: %q", b)
	}
}
