package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/simgate/simgate/core/udr"
)

func TestGroupSetShowList(t *testing.T) {
	dir := t.TempDir()
	// A group nothing was set for has the defaults.
	var g udr.Group
	if err := json.Unmarshal([]byte(mustRun(t, dir, "group", "show", "default")), &g); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g.Endorse, udr.DefaultEndorse()) {
		t.Fatalf("default group: %+v", g)
	}

	const entry = "beam[tcp://beam.soracom.io:8023]"
	out := mustRun(t, dir, "group", "set", "fleet",
		"endorse.parametersToEndorse.imei=false", "endorse.parametersToEndorse.simId=true",
		"endorse.tokenTimeoutSeconds=6000", "endorse.allowOrigin=https://soracom.io",
		"endorse.authorizedRedirectUrls=https://soracom.io,http://localhost:3000",
		entry+".destination=tcps://example.com:8023", entry+".addSignature=true", entry+".psk=topsecret",
		"beam[http://beam.soracom.io:8888/].destination=https://example.com/a?x=1&y=2")
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("set output: %v\n%s", err, out)
	}
	shown := mustRun(t, dir, "group", "show", "fleet")
	if shown != out {
		t.Fatalf("show differs from what set printed:\n%s\n%s", shown, out)
	}
	p := g.Endorse.ParametersToEndorse
	if g.Name != "fleet" || p.IMEI || !p.SIMID || !p.IMSI || g.Endorse.TokenTimeoutSeconds != 6000 ||
		len(g.Endorse.AuthorizedRedirectURLs) != 2 || g.Beam["tcp://beam.soracom.io:8023"].PSK != "topsecret" {
		t.Fatalf("group after set: %+v", g)
	}
	for _, want := range []string{`"SoracomEndorse": {`, `"tokenTimeoutSeconds": 6000`, `"https://example.com/a?x=1&y=2"`} {
		if !strings.Contains(shown, want) {
			t.Errorf("show lacks %s:\n%s", want, shown)
		}
	}

	// A change keeps the other settings; a SIM in another group lists it.
	mustRun(t, dir, "group", "set", "fleet", "endorse.enabled=false")
	if err := json.Unmarshal([]byte(mustRun(t, dir, "group", "show", "fleet")), &g); err != nil || g.Endorse.Enabled || g.Endorse.TokenTimeoutSeconds != 6000 {
		t.Fatalf("second set: %+v %v", g, err)
	}
	mustRun(t, dir, "sim", "add", "--imsi", "001010000000001", "--k", tsK, "--opc", tsOPc, "--group", "lab")
	table := mustRun(t, dir, "group", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "default ") || !strings.HasPrefix(lines[2], "fleet ") ||
		!strings.Contains(lines[2], "off") || !strings.Contains(lines[2], "6000s") || !strings.HasPrefix(lines[3], "lab ") {
		t.Fatalf("group list:\n%s", table)
	}
	var rows []struct {
		Name string `json:"name"`
		SIMs int    `json:"sims"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, dir, "group", "list", "--json")), &rows); err != nil || len(rows) != 3 || rows[2].Name != "lab" || rows[2].SIMs != 1 {
		t.Fatalf("group list --json: %+v %v", rows, err)
	}

	mustFail(t, dir, "1 SIMs are in it", "group", "delete", "lab")
	mustRun(t, dir, "group", "delete", "fleet")
	mustFail(t, dir, "not found", "group", "delete", "fleet")
}

func TestGroupSetErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"endorse.colour=red"}, "endorse.colour: unknown key"},
		{[]string{"endorse.enabled=yes please"}, `endorse.enabled: "yes please" is not true or false`},
		{[]string{"endorse.tokenTimeoutSeconds=-1"}, "endorse.tokenTimeoutSeconds"},
		{[]string{"endorse.allowOrigin=https://x/path"}, "not an origin"},
		{[]string{"beam[http://beam.soracom.io:8888/].destination=https://d/", "beam[http://beam.soracom.io:8888/].addSignature=true"}, "addSignature: needs psk"},
		{[]string{"beam[http://beam.soracom.io:8888/].nmae=x"}, `unknown Beam field "nmae"`},
		{[]string{"endorse.enabled"}, "want key=value"},
		{[]string{"endorse.enabled=false", "bogus=1"}, "bogus: unknown key"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			mustFail(t, dir, tt.want, append([]string{"group", "set", "g"}, tt.args...)...)
		})
	}
	// Nothing was stored by the failed sets (the valid first key of the last one included).
	var g udr.Group
	if err := json.Unmarshal([]byte(mustRun(t, dir, "group", "show", "g")), &g); err != nil || !g.Endorse.Enabled || len(g.Beam) != 0 {
		t.Fatalf("failed sets changed the group: %+v %v", g, err)
	}
	mustFail(t, dir, "group name", "group", "set", "bad/name", "endorse.enabled=true")
	mustFail(t, dir, "group name", "group", "show", "bad/name")
	mustFail(t, dir, "requires at least 2 arg(s)", "group", "set", "g")
}
