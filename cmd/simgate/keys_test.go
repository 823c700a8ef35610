package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/simgate/simgate/endorse"
)

func keysList(t *testing.T, dir string) []endorse.KeyInfo {
	t.Helper()
	out, errs, code := runCmd(t, "keys", "list", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("keys list: %s", errs)
	}
	var list []endorse.KeyInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("keys list output: %v\n%s", err, out)
	}
	return list
}

func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	list := keysList(t, dir)
	if len(list) != 1 || list[0].Status != endorse.StatusSigning || list[0].Algorithm != endorse.RS256 || !endorse.ValidKID(list[0].KID) {
		t.Fatalf("first key: %+v", list)
	}
	first := list[0].KID
	if fi, err := os.Stat(filepath.Join(dir, endorse.KeyDir, "keys.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	// Kept across runs.
	if again := keysList(t, dir); len(again) != 1 || again[0].KID != first {
		t.Fatalf("key changed between runs: %+v", again)
	}

	// export: the signing key's public half as PEM SPKI, its kid computed.
	out, errs, code := runCmd(t, "keys", "export", "--data-dir", dir)
	if code != 0 {
		t.Fatal(errs)
	}
	if kid := pemKID(t, out); kid != first {
		t.Fatalf("exported key has kid %s, want %s", kid, first)
	}

	// rotate
	out, errs, code = runCmd(t, "keys", "rotate", "--data-dir", dir)
	if code != 0 {
		t.Fatal(errs)
	}
	var rotated endorse.KeyInfo
	if err := json.Unmarshal([]byte(out), &rotated); err != nil || rotated.KID == first || rotated.Status != endorse.StatusSigning {
		t.Fatalf("rotate: %v %s", err, out)
	}
	list = keysList(t, dir)
	if len(list) != 2 || list[0].KID != rotated.KID || list[1].KID != first || list[1].Status != endorse.StatusRetired || list[1].ExpiresAt.IsZero() {
		t.Fatalf("after rotate: %+v", list)
	}
	out, _, _ = runCmd(t, "keys", "export", "--data-dir", dir)
	if pemKID(t, out) != rotated.KID {
		t.Error("export does not give the new signing key")
	}
	out, _, code = runCmd(t, "keys", "export", "--kid", first, "--data-dir", dir)
	if code != 0 || pemKID(t, out) != first {
		t.Error("export --kid of the retired key")
	}

	// export --jwks: both keys.
	out, errs, code = runCmd(t, "keys", "export", "--jwks", "--data-dir", dir)
	var set struct {
		Keys []struct{ Kid, Kty, Alg string } `json:"keys"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &set) != nil || len(set.Keys) != 2 ||
		set.Keys[0].Kid != rotated.KID || set.Keys[1].Kid != first || set.Keys[0].Kty != "RSA" {
		t.Fatalf("jwks: %d %s %s", code, out, errs)
	}

	// An algorithm chosen by flag (once Config has the endorse section)
	// rotates to an ES256 key.
	out, errs, code = runCmd(t, "keys", "list", "--endorse.algorithm", "ES256", "--data-dir", dir)
	switch {
	case configHasEndorse() && (code != 0 || !strings.Contains(out, `"alg": "ES256"`)):
		t.Errorf("--endorse.algorithm ES256: %d %s %s", code, out, errs)
	case !configHasEndorse() && code == 0:
		t.Errorf("--endorse.algorithm accepted without an endorse section")
	}
}

// configHasEndorse reports whether Config carries the endorse section (and
// so the --endorse.* flags).
func configHasEndorse() bool {
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Type == reflect.TypeOf(endorse.Config{}) {
			return true
		}
	}
	return false
}

func TestKeysErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"keys", "export", "--kid", "v1-xyz"}, "want v1-<32 lowercase hex>-x509.pem"},
		{[]string{"keys", "export", "--kid", "v1-00000000000000000000000000000000-x509.pem"}, "no published key"},
		{[]string{"keys", "export", "--kid", "v1-00000000000000000000000000000000-x509.pem", "--jwks"}, "none of the others"},
		{[]string{"keys", "list", "extra"}, "unknown command"},
	}
	for _, tt := range tests {
		_, errs, code := runCmd(t, append(tt.args, "--data-dir", dir)...)
		if code == 0 || !strings.Contains(errLine(errs), tt.want) {
			t.Errorf("%v: code %d, stderr %q, want %q", tt.args, code, errs, tt.want)
		}
	}
	// A corrupt ring is reported, not replaced.
	if err := os.WriteFile(filepath.Join(dir, endorse.KeyDir, "keys.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs, code := runCmd(t, "keys", "list", "--data-dir", dir)
	if code == 0 || !strings.Contains(errs, "keys.json") {
		t.Errorf("corrupt ring: %d %s", code, errs)
	}
}

// pemKID parses a PEM public key and returns its kid.
func pemKID(t *testing.T, s string) string {
	t.Helper()
	blk, rest := pem.Decode([]byte(s))
	if blk == nil || blk.Type != "PUBLIC KEY" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("not one PEM public key: %q", s)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := endorse.KID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// errLine is the one error line the root prints ("simgate: ..."); log lines
// before it are ignored.
func errLine(stderr string) string {
	var line string
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(l, "simgate: ") {
			line, n = l, n+1
		}
	}
	if n != 1 {
		return ""
	}
	return line
}
