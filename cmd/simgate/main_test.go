package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// runCmd runs one simgate command line in-process with --data-dir set to a
// fresh temporary directory unless args already name one. It returns stdout,
// stderr and the exit code.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	hasDir := false
	for _, a := range args {
		if a == "--data-dir" || strings.HasPrefix(a, "--data-dir=") {
			hasDir = true
		}
	}
	if !hasDir {
		args = append(args, "--data-dir", t.TempDir())
	}
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// chdir runs the test in dir (for the default ./simgate.yaml).
func chdir(t *testing.T, dir string) {
	t.Helper()
	t.Chdir(dir)
}

func TestVersion(t *testing.T) {
	out, _, code := runCmd(t, "version")
	if code != 0 || !strings.HasPrefix(out, "simgate ") {
		t.Fatalf("version: code %d, out %q", code, out)
	}
}

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(file, []byte("data_dir: /from/file\nlog:\n  level: warn\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// File over defaults.
	out, errs, code := runCmd(t, "config", "show", "--config", file, "--data-dir=/from/flag")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errs)
	}
	for _, want := range []string{`data_dir: "/from/flag"`, `level: "warn"`, `format: "text"`} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %s:\n%s", want, out)
		}
	}
	// Flag over file.
	out, _, _ = runCmd(t, "config", "show", "--config", file, "--log.level", "debug")
	if !strings.Contains(out, `level: "debug"`) || !strings.Contains(out, `# log level`) {
		t.Errorf("flag did not win or docs missing:\n%s", out)
	}
}

func TestConfigDefaultFile(t *testing.T) {
	dir := t.TempDir()
	chdir(t, dir)
	if err := os.WriteFile("simgate.yaml", []byte("log: {format: json}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCmd(t, "config", "show")
	if code != 0 || !strings.Contains(out, `format: "json"`) {
		t.Fatalf("./simgate.yaml not read: code %d %s\n%s", code, errs, out)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		args       []string
		want       string
	}{
		{"unknown top key", "colour: red\n", nil, `unknown key "colour"`},
		{"unknown nested key", "log:\n  levl: info\n", nil, `unknown key "log.levl"`},
		{"bad value", "log:\n  level: loud\n", nil, `log.level: "loud"`},
		{"not a mapping", "log: 3\n", nil, "log: want a mapping"},
		{"list for scalar", "data_dir: [a, b]\n", nil, "data_dir: want a single value"},
		{"duplicate key", "log: {level: info, level: warn}\n", nil, "log.level"},
		{"bad yaml", "log: [\n", nil, "c.yaml"},
		{"bad flag", "", []string{"--log.format", "xml"}, `log.format: "xml"`},
		{"missing file", "-", nil, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yaml")
			if tt.yaml != "-" {
				if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := append([]string{"config", "show", "--config", file}, tt.args...)
			_, errs, code := runCmd(t, args...)
			if code == 0 {
				t.Fatalf("accepted bad configuration")
			}
			if !strings.Contains(errs, tt.want) {
				t.Fatalf("error %q does not mention %q", errs, tt.want)
			}
			if strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("error is not one line: %q", errs)
			}
		})
	}
}

func TestConfigShowRoundTrips(t *testing.T) {
	out, _, code := runCmd(t, "config", "show", "--defaults")
	if code != 0 {
		t.Fatal("config show failed")
	}
	var c = Config{}
	if err := decodeConfig("defaults", []byte(out), &c); err != nil {
		t.Fatalf("printed defaults do not parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Fatalf("round trip changed the configuration: %+v", c)
	}
}
