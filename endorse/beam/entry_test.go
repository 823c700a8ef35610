package beam

import (
	"strings"
	"testing"

	"github.com/simgate/simgate/core/udr"
)

func TestLookup(t *testing.T) {
	on := func(dest string) udr.BeamEntry { return udr.BeamEntry{Enabled: true, Destination: dest} }
	cfg := udr.BeamConfig{
		"http://beam.soracom.io:8888/":           on("http://root/"),
		"http://beam.soracom.io:8888/api":        on("http://api/"),
		"http://beam.soracom.io:8888/api/v2/":    on("http://v2/"),
		"http://beam.soracom.io:8888/off":        {Enabled: false, Destination: "http://off/"},
		"http://BEAM.soracom.io:8888/Case":       on("http://case/"),
		"http://beam.soracom.io:8889/other":      on("http://other-port/"),
		"http://beam.example:8888/other-host":    on("http://other-host/"),
		"http://beam.soracom.io:18080":           on("http://website/"),
		"tcp://beam.soracom.io:8023":             on("tcp://tcp:1"),
		"http://beam.soracom.io:8888/sp%20ace":   on("http://space/"),
		"http://beam.soracom.io:8888/%2Fslash":   on("http://slash/"),
		"http://beam.soracom.io:8888/bad\x7fkey": on("http://bad/"),
	}
	http8888, _, _ := parseEndpoint(HTTPEntryPoint)
	website, _, _ := parseEndpoint(WebsiteEntryPoint)
	website80, _, _ := parseEndpoint("http://beam.soracom.io")
	tcp, _, _ := parseEndpoint(TCPEntryPoint)
	tests := []struct {
		ep       endpoint
		path     string
		wantDest string // "" for no match
		wantRest string
	}{
		{http8888, "/", "http://root/", "/"},
		{http8888, "", "http://root/", ""},
		{http8888, "/anything/else", "http://root/", "/anything/else"},
		{http8888, "/api", "http://api/", ""},
		{http8888, "/api/", "http://api/", "/"},
		{http8888, "/api/items", "http://api/", "/items"},
		{http8888, "/apix", "http://root/", "/apix"}, // '/' boundary
		{http8888, "/api/v2", "http://v2/", ""},      // trailing '/' of the entry path ignored
		{http8888, "/api/v2/x", "http://v2/", "/x"},  // longest prefix
		{http8888, "/api/v3/x", "http://api/", "/v3/x"},
		{http8888, "/off/x", "http://root/", "/off/x"},   // disabled: as if absent
		{http8888, "/Case/x", "http://case/", "/x"},      // host compared case-insensitively
		{http8888, "/case/x", "http://root/", "/case/x"}, // path case-sensitive
		{http8888, "/other", "http://root/", "/other"},
		{http8888, "/other-host", "http://root/", "/other-host"},
		{http8888, "/sp%20ace/x", "http://space/", "/x"},
		{http8888, "/%2Fslash", "http://slash/", ""},
		{http8888, "//", "http://root/", "//"},
		{website, "/my/custom/path", "http://website/", "/my/custom/path"},
		{website80, "/x", "", ""}, // port 80 is served with EntryPoint 18080, not its own keys
		{tcp, "", "tcp://tcp:1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.ep.port+tt.path, func(t *testing.T) {
			m, ok := lookup(cfg, tt.ep, tt.path)
			if tt.wantDest == "" {
				if ok {
					t.Fatalf("lookup matched %q", m.key)
				}
				return
			}
			if !ok || m.entry.Destination != tt.wantDest || m.rest != tt.wantRest {
				t.Fatalf("lookup = %q dest %q rest %q ok %v; want dest %q rest %q", m.key, m.entry.Destination, m.rest, ok, tt.wantDest, tt.wantRest)
			}
		})
	}
	if _, ok := lookup(udr.BeamConfig{"http://beam.soracom.io:8888/a": on("http://a/")}, http8888, "/b"); ok {
		t.Error("lookup matched with no entry for the path")
	}
	if _, ok := lookup(nil, http8888, "/"); ok {
		t.Error("lookup matched in an empty configuration")
	}
}

func TestJoinPath(t *testing.T) {
	tests := []struct{ dest, rest, want string }{
		{"", "", "/"},
		{"/", "", "/"},
		{"/base", "", "/base"},
		{"", "/x", "/x"},
		{"/", "/x", "/x"},
		{"/base", "/x/y", "/base/x/y"},
		{"/base/", "/x", "/base/x"},
		{"/base/", "/", "/base/"},
	}
	for _, tt := range tests {
		if got := joinPath(tt.dest, tt.rest); got != tt.want {
			t.Errorf("joinPath(%q, %q) = %q, want %q", tt.dest, tt.rest, got, tt.want)
		}
	}
}

func TestHasDotSegment(t *testing.T) {
	for p, want := range map[string]bool{
		"/a/b": false, "/a..b/c": false, "/.well-known/x": false, "/": false, "": false,
		"/a/../b": true, "/..": true, "/./a": true, "/a/.": true, "/a/%2e%2e/b": true, "/%2E": true, "/a/.%2E": true,
	} {
		if got := hasDotSegment(p); got != want {
			t.Errorf("hasDotSegment(%q) = %v, want %v", p, got, want)
		}
	}
}

// FuzzLookup: whatever path a device sends, the chosen entry's path is a
// '/'-boundary prefix of it, and the forwarded path stays below the
// destination path.
func FuzzLookup(f *testing.F) {
	cfg := udr.BeamConfig{
		"http://beam.soracom.io:8888/":     {Enabled: true, Destination: "http://root/r"},
		"http://beam.soracom.io:8888/a":    {Enabled: true, Destination: "http://a/base/"},
		"http://beam.soracom.io:8888/a/b/": {Enabled: true, Destination: "http://ab/"},
	}
	ep, _, _ := parseEndpoint(HTTPEntryPoint)
	for _, s := range []string{"/", "/a", "/a/b", "/a/bc", "/a/b/c", "//a", "", "/a%2Fb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		m, ok := lookup(cfg, ep, path)
		if !ok {
			if strings.HasPrefix(path, "/") || path == "" {
				t.Fatalf("no match for %q despite the root entry", path)
			}
			return
		}
		_, p, _ := parseEndpoint(m.key)
		base := strings.TrimSuffix(p, "/")
		if base+m.rest != path {
			t.Fatalf("entry %q rest %q do not make up %q", m.key, m.rest, path)
		}
		if m.rest != "" && m.rest[0] != '/' {
			t.Fatalf("rest %q of %q does not start at a '/'", m.rest, path)
		}
		dest, err := destination(m.entry.Destination, false, "http")
		if err != nil {
			t.Fatal(err)
		}
		dp := dest.EscapedPath()
		if out := joinPath(dp, m.rest); !strings.HasPrefix(out, strings.TrimSuffix(dp, "/")) {
			t.Fatalf("forwarded path %q left destination path %q", out, dp)
		}
	})
}
