// Package vectors loads the official test vectors kept in ../shared/vectors,
// beside the repository, so that tests of every package read one copy.
package vectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the directory holding the shared vector files: $SIMGATE_VECTORS
// if set, else ../shared/vectors relative to the module root.
func Dir() (string, error) {
	if d := os.Getenv("SIMGATE_VECTORS"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "vectors"), nil
		}
		if filepath.Dir(d) == d {
			return "", os.ErrNotExist
		}
	}
}

// File is the common shape of every vector file.
type File[C any] struct {
	Source string   `json:"source"`
	Notes  []string `json:"notes"`
	Cases  []C      `json:"cases"`
}

// Load reads name (e.g. "milenage.json") into a File of cases of type C.
// Without the vector directory the test is skipped with the reason, except
// under CI=true, where it fails: CI always has ../shared.
func Load[C any](t testing.TB, name string) []C {
	t.Helper()
	dir, err := Dir()
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, name))
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("vectors: %s not found (%v); CI must have ../shared beside the repository", name, err)
		}
		t.Skipf("vectors: %s not found (%v); set SIMGATE_VECTORS or place shared/ beside the repository", name, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("vectors: %v", err)
	}
	var f File[C]
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("vectors: %s: %v", name, err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("vectors: %s has no cases", name)
	}
	return f.Cases
}
