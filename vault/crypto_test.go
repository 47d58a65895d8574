package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
	"unicode"

	bbolt "go.etcd.io/bbolt"
)

func TestParseKey(t *testing.T) {
	// Bytes chosen so standard and URL base64 differ (0xfb 0xff → "+/" vs "-_").
	raw := bytes.Repeat([]byte{0xfb, 0xff, 0x01, 0x80}, 8)
	for _, tc := range []struct {
		name, in string
	}{
		{"hex lower", hex.EncodeToString(raw)},
		{"hex upper", strings.ToUpper(hex.EncodeToString(raw))},
		{"base64url raw", base64.RawURLEncoding.EncodeToString(raw)},
		{"base64url padded", base64.URLEncoding.EncodeToString(raw)},
		{"std raw", base64.RawStdEncoding.EncodeToString(raw)},
		{"std padded", base64.StdEncoding.EncodeToString(raw)},
		{"surrounding space", "  " + base64.StdEncoding.EncodeToString(raw) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKey(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, raw) {
				t.Fatalf("got %x", got)
			}
		})
	}
}

func TestParseKeyRejects(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "empty"},
		{"31 bytes", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 31)), "31 bytes"},
		{"33 bytes", base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 33)), "33 bytes"},
		{"16 bytes", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 16)), "16 bytes"},
		{"62 hex", strings.Repeat("ab", 31), "62 hex characters"},
		{"66 hex", strings.Repeat("cd", 33), "66 hex characters"},
		{"not an encoding", "this is not a key!!! at all, definitely not", "neither base64url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKey(tc.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q does not say %q", err, tc.want)
			}
			if tc.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
				t.Errorf("message echoes the key: %q", err)
			}
		})
	}
}

func TestOpenRejectsBadKeyWithoutEchoingIt(t *testing.T) {
	bad := base64.StdEncoding.EncodeToString([]byte("only-twenty-bytes-xx"))
	_, err := openFile(t.TempDir()+"/v.db", Options{EncryptionKeys: []string{testKey1, bad}, Pepper: testPepper})
	if err == nil || !strings.Contains(err.Error(), "#2") || strings.Contains(err.Error(), bad) {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add(testKey1)
	f.Add(testKey2)
	f.Add(strings.Repeat("0f", 32))
	f.Add("")
	f.Add("====")
	f.Add(strings.Repeat("A", 43) + "=")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err == nil {
			if len(k) != 32 {
				t.Fatalf("accepted a %d-byte key", len(k))
			}
			return
		}
		// No run of key-like characters long enough to be (part of) a key.
		for _, word := range strings.FieldsFunc(err.Error(), func(r rune) bool {
			return !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("+/_-=", r))
		}) {
			if len(word) >= 16 {
				t.Fatalf("error message may echo the key: %q", err)
			}
		}
	})
}

// tokenRecordOf reads a user's raw token record.
func tokenRecordOf(t *testing.T, v *Vault, userID string) TokenRecord {
	t.Helper()
	var rec TokenRecord
	err := boltOf(v).DB().View(func(tx *bbolt.Tx) error {
		var err error
		ref := first(t, v, userID)
		rec, err = getTokenRecord(tx.Bucket(bucketTokens), accountKey(ref.UserID, ref.ID))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// putTokenRecord writes a raw token record.
func putTokenRecord(t *testing.T, v *Vault, userID string, rec TokenRecord) {
	t.Helper()
	ref := first(t, v, userID)
	if err := boltOf(v).DB().Update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bucketTokens), accountKey(ref.UserID, ref.ID), rec)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestTokenBundleCrypto(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, v *Vault, alice, bob string)
	}{
		{"untouched", func(*testing.T, *Vault, string, string) {}},
		{"bundle copied to another user", func(t *testing.T, v *Vault, alice, bob string) {
			putTokenRecord(t, v, bob, tokenRecordOf(t, v, alice))
		}},
		{"tampered ciphertext", func(t *testing.T, v *Vault, _, bob string) {
			rec := tokenRecordOf(t, v, bob)
			rec.Ciphertext[3] ^= 1
			putTokenRecord(t, v, bob, rec)
		}},
		{"tampered nonce", func(t *testing.T, v *Vault, _, bob string) {
			rec := tokenRecordOf(t, v, bob)
			rec.Nonce[0] ^= 1
			putTokenRecord(t, v, bob, rec)
		}},
		{"key id swapped", func(t *testing.T, v *Vault, _, bob string) {
			rec := tokenRecordOf(t, v, bob)
			rec.KeyID = "00000000"
			putTokenRecord(t, v, bob, rec)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, path, clock := newTestVault(t, nil)
			alice, bob := mustUser(t, v, "alice@example.com"), mustUser(t, v, "bob@example.com")
			for _, u := range []User{alice, bob} {
				if err := v.PutTokens(u.ID, bundle("rt-"+u.Email, t0.Add(-2*time.Hour))); err != nil {
					t.Fatal(err)
				}
			}
			tc.change(t, v, alice.ID, bob.ID)
			v.Close()
			v2 := openAt(t, path, testOptions(clock))
			b, err := v2.readBundle(context.Background(), first(t, v2, bob.ID))
			if tc.name == "untouched" {
				if err != nil || b.RefreshToken != "rt-bob@example.com" {
					t.Fatalf("got %q, %v", b.RefreshToken, err)
				}
				return
			}
			wantErr(t, err, ErrTokenUndecryptable)
			_, _, err = v2.AccessToken(context.Background(), bob.ID, false)
			wantErr(t, err, ErrTokenUndecryptable)
			// Alice is unaffected.
			if got := storedBundle(t, v2, alice.ID); got.RefreshToken != "rt-alice@example.com" {
				t.Fatalf("alice: %q", got.RefreshToken)
			}
		})
	}
}

func TestWrongKeyCannotDecrypt(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	if err := v.PutTokens(u.ID, bundle("rt-0", t0.Add(2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	v.Close()
	opts := testOptions(clock)
	opts.EncryptionKeys = []string{testKey2}
	v2 := openAt(t, path, opts)
	_, _, err := v2.AccessToken(context.Background(), u.ID, false)
	wantErr(t, err, ErrTokenUndecryptable)
}

func TestKeyRotation(t *testing.T) {
	v, path, clock := newTestVault(t, nil)
	var users []User
	for _, e := range []string{"a@x.io", "b@x.io", "c@x.io"} {
		u := mustUser(t, v, e)
		if err := v.PutTokens(u.ID, bundle("rt-"+e, t0.Add(2*time.Hour))); err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	v.Close()

	// New key first, old key second: everything still opens.
	opts := testOptions(clock)
	opts.EncryptionKeys = []string{testKey2, testKey1}
	v2 := openAt(t, path, opts)
	for _, u := range users {
		if _, _, err := v2.AccessToken(context.Background(), u.ID, false); err != nil {
			t.Fatalf("before rotation: %v", err)
		}
	}
	n, err := v2.ReencryptAll()
	if err != nil || n != len(users) {
		t.Fatalf("ReencryptAll = %d, %v", n, err)
	}
	if n, err := v2.ReencryptAll(); err != nil || n != 0 {
		t.Fatalf("second ReencryptAll = %d, %v", n, err)
	}
	v2.Close()

	// The old key can go.
	opts.EncryptionKeys = []string{testKey2}
	v3 := openAt(t, path, opts)
	for _, u := range users {
		if got := storedBundle(t, v3, u.ID); got.RefreshToken != "rt-"+u.Email {
			t.Fatalf("after rotation: %q", got.RefreshToken)
		}
		if rec := tokenRecordOf(t, v3, u.ID); rec.KeyID != v3.keyring.primaryID() {
			t.Fatalf("record still under key %s", rec.KeyID)
		}
	}
}

func TestSecretsNotInFile(t *testing.T) {
	v, path, _ := newTestVault(t, nil)
	u := mustUser(t, v, "a@example.com")
	b := bundle("refresh-token-secret-value", t0.Add(2*time.Hour))
	if err := v.PutTokens(u.ID, b); err != nil {
		t.Fatal(err)
	}
	plain, _, err := v.CreateKey(u.ID, "laptop")
	if err != nil {
		t.Fatal(err)
	}
	session, _ := v.CreateSession(u.ID, time.Hour)
	v.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, secret := range map[string]string{
		"refresh token": b.RefreshToken, "access token": b.AccessToken, "API key": plain,
		"API key body": plain[len(keyPrefix):], "session": session, "pepper": testPepper,
	} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("%s stored in clear", name)
		}
		if js, _ := json.Marshal(secret); bytes.Contains(data, js[1:len(js)-1]) {
			t.Errorf("%s stored in clear (JSON-escaped)", name)
		}
	}
}
