package udr

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestGroupDefaultsAndPersistence(t *testing.T) {
	s, _ := openTemp(t)
	for _, name := range []string{DefaultGroup, "never-stored"} {
		g, err := s.GetGroup(name)
		if err != nil {
			t.Fatal(err)
		}
		if g.Name != name || !reflect.DeepEqual(g.Endorse, DefaultEndorse()) || len(g.Beam) != 0 {
			t.Fatalf("%s: %+v, want DefaultEndorse and no Beam", name, g)
		}
	}
	if _, err := s.GetGroup("bad name"); err == nil {
		t.Fatal("invalid group name accepted")
	}
	groups, err := s.ListGroups()
	if err != nil || len(groups) != 1 || groups[0].Name != DefaultGroup {
		t.Fatalf("fresh store groups %+v %v, want only default", groups, err)
	}

	g := newGroup("fleet")
	g.Endorse.TokenTimeoutSeconds = 6000
	g.Endorse.ParametersToEndorse.MSISDN = true
	g.Beam["tcp://beam.soracom.io:8023"] = BeamEntry{Destination: "tcps://example.com:8023", Enabled: true, AddSignature: true, PSK: "topsecret"}
	if err := s.PutGroup(g); err != nil {
		t.Fatal(err)
	}
	sim := simN(1)
	sim.Group = "other"
	if err := s.AddSIM(sim); err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s)
	got, err := s.GetGroup("fleet")
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("after reopen %+v %v, want %+v", got, err, g)
	}
	groups, _ = s.ListGroups()
	var names []string
	for _, g := range groups {
		names = append(names, g.Name)
	}
	if strings.Join(names, ",") != "default,fleet,other" {
		t.Fatalf("groups %v: want stored, referenced and default", names)
	}
	counts, err := s.GroupSIMCounts()
	if err != nil || counts["other"] != 1 || counts["fleet"] != 0 {
		t.Fatalf("counts %v %v", counts, err)
	}

	// Delete: refused while SIMs are in it, ErrNotFound when nothing stored.
	if err := s.PutGroup(newGroup("other")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup("other"); err == nil || !strings.Contains(err.Error(), "1 SIMs") {
		t.Fatalf("delete in-use group: %v", err)
	}
	if err := s.DeleteGroup("fleet"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup("fleet"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// The default group always exists: deleting it resets it.
	if _, err := s.UpdateGroup(DefaultGroup, func(g *Group) error { return g.Set("endorse.enabled", "false") }); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGroup(DefaultGroup); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetGroup(DefaultGroup); !g.Endorse.Enabled {
		t.Fatal("default group not reset")
	}

	// UpdateGroup is atomic: a failing or invalid update stores nothing.
	if _, err := s.UpdateGroup("g2", func(g *Group) error {
		g.Endorse.Enabled = false
		return errors.New("no")
	}); err == nil {
		t.Fatal("fn error ignored")
	}
	if _, err := s.UpdateGroup("g2", func(g *Group) error { g.Endorse.TokenTimeoutSeconds = 0; return nil }); err == nil {
		t.Fatal("invalid group stored")
	}
	if g, _ := s.GetGroup("g2"); !reflect.DeepEqual(g, newGroup("g2")) {
		t.Fatalf("failed updates left %+v", g)
	}
}

func TestGroupSet(t *testing.T) {
	const http8888 = "http://beam.soracom.io:8888/"
	tests := []struct {
		name  string
		kvs   []string
		check func(g Group) bool
	}{
		{"enabled", []string{"endorse.enabled=false"}, func(g Group) bool { return !g.Endorse.Enabled }},
		{"param imei off", []string{"endorse.parametersToEndorse.imei=false"}, func(g Group) bool { return !g.Endorse.ParametersToEndorse.IMEI }},
		{"params case-insensitive", []string{"Endorse.ParametersToEndorse.SimId=true", "endorse.parameterstoendorse.msisdn=1", "endorse.parametersToEndorse.requestParameters=true"},
			func(g Group) bool {
				p := g.Endorse.ParametersToEndorse
				return p.SIMID && p.MSISDN && p.RequestParameters && p.IMSI
			}},
		{"timeout", []string{"endorse.tokenTimeoutSeconds=6000"}, func(g Group) bool { return g.Endorse.TokenTimeoutSeconds == 6000 }},
		{"origin", []string{"endorse.allowOrigin=https://soracom.io"}, func(g Group) bool { return g.Endorse.AllowOrigin == "https://soracom.io" }},
		{"origin star then clear", []string{"endorse.allowOrigin=*", "endorse.allowOrigin="}, func(g Group) bool { return g.Endorse.AllowOrigin == "" }},
		{"redirects", []string{"endorse.authorizedRedirectUrls=https://soracom.io, http://localhost:3000"},
			func(g Group) bool {
				return reflect.DeepEqual(g.Endorse.AuthorizedRedirectURLs, []string{"https://soracom.io", "http://localhost:3000"})
			}},
		{"redirects clear", []string{"endorse.authorizedRedirectUrls=https://a.example", "endorse.authorizedRedirectUrls="},
			func(g Group) bool { return g.Endorse.AuthorizedRedirectURLs == nil }},
		{"beam entry", []string{"beam[" + http8888 + "].destination=https://example.com/in", "beam[" + http8888 + "].addSubscriberHeader=true", "beam[" + http8888 + "].name=web"},
			func(g Group) bool {
				b := g.Beam[http8888]
				return b.Enabled && b.Destination == "https://example.com/in" && b.AddSubscriberHeader && b.Name == "web"
			}},
		{"beam signature with psk", []string{"beam[tcp://beam.soracom.io:8023].destination=tcps://h:1234", "beam[tcp://beam.soracom.io:8023].addSignature=true", "beam[tcp://beam.soracom.io:8023].psk=topsecret",
			"beam[tcp://beam.soracom.io:8023].addEquipmentHeader=true", "beam[tcp://beam.soracom.io:8023].addMsisdnHeader=true", "beam[tcp://beam.soracom.io:8023].addSimIdHeader=true", "beam[tcp://beam.soracom.io:8023].skipStatusCode=true"},
			func(g Group) bool {
				b := g.Beam["tcp://beam.soracom.io:8023"]
				return b.AddSignature && b.PSK == "topsecret" && b.AddEquipmentHeader && b.AddMsisdnHeader && b.AddSimIDHeader && b.SkipStatusCode
			}},
		{"beam ipv6 entry", []string{"beam[http://[::1]:8888/].destination=http://[::1]:9000/"},
			func(g Group) bool { return g.Beam["http://[::1]:8888/"].Destination == "http://[::1]:9000/" }},
		{"custom header", []string{"beam[" + http8888 + "].destination=https://e.example/", "beam[" + http8888 + "].customHeaders[X-Api-Key].action=replace", "beam[" + http8888 + "].customHeaders[X-Api-Key].headerValue=abc"},
			func(g Group) bool {
				h := g.Beam[http8888].CustomHeaders["X-Api-Key"]
				return h == CustomHeader{Action: "replace", HeaderKey: "X-Api-Key", HeaderValue: "abc"}
			}},
		{"custom header delete", []string{"beam[" + http8888 + "].destination=https://e.example/", "beam[" + http8888 + "].customHeaders[X-A].action=delete", "beam[" + http8888 + "].customHeaders[X-A]="},
			func(g Group) bool { _, ok := g.Beam[http8888].CustomHeaders["X-A"]; return !ok }},
		{"beam delete entry", []string{"beam[" + http8888 + "].destination=https://e.example/", "beam[" + http8888 + "]="},
			func(g Group) bool { _, ok := g.Beam[http8888]; return !ok }},
		{"disabled entry needs no destination", []string{"beam[mqtt://beam.soracom.io:1883].enabled=false"},
			func(g Group) bool { return !g.Beam["mqtt://beam.soracom.io:1883"].Enabled }},
	}
	s, _ := openTemp(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("g%d", i)
			g, err := s.UpdateGroup(name, func(g *Group) error { return applyAll(g, tt.kvs) })
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(g) {
				t.Fatalf("not applied: %+v", g)
			}
			stored, _ := s.GetGroup(name)
			if !reflect.DeepEqual(stored, g) {
				t.Fatalf("stored %+v, returned %+v", stored, g)
			}
		})
	}
}

func applyAll(g *Group, kvs []string) error {
	for _, kv := range kvs {
		k, v, err := SplitAssignment(kv)
		if err != nil {
			return err
		}
		if err := g.Set(k, v); err != nil {
			return err
		}
	}
	return nil
}

func TestGroupSetErrors(t *testing.T) {
	const e = "beam[http://beam.soracom.io:8888/]"
	tests := []struct {
		kvs  []string
		want string // in the error: the key and the reason
	}{
		{[]string{"colour=red"}, `colour: unknown key`},
		{[]string{"endorse.colour=red"}, `endorse.colour: unknown key`},
		{[]string{"endorse.enabled=maybe"}, `endorse.enabled: "maybe" is not true or false`},
		{[]string{"endorse.parametersToEndorse.iccid=true"}, `parametersToEndorse.iccid: unknown key`},
		{[]string{"endorse.tokenTimeoutSeconds=0"}, `tokenTimeoutSeconds: "0" is not a number of seconds`},
		{[]string{"endorse.tokenTimeoutSeconds=ten"}, `tokenTimeoutSeconds: "ten"`},
		{[]string{"endorse.tokenTimeoutSeconds=99999999999"}, `tokenTimeoutSeconds`},
		{[]string{"endorse.allowOrigin=soracom.io"}, `allowOrigin: "soracom.io": scheme`},
		{[]string{"endorse.allowOrigin=https://soracom.io/path"}, `is not an origin`},
		{[]string{"endorse.authorizedRedirectUrls=https://ok.example,ftp://x"}, `authorizedRedirectUrls: "ftp://x": scheme "ftp"`},
		{[]string{"beam.http://x/.destination=http://y"}, `Beam keys are beam[ENTRY-URL].FIELD`},
		{[]string{"beam[http://beam.soracom.io:8888/.destination=http://y"}, `unbalanced brackets`},
		{[]string{"beam[http://beam.soracom.io:8888/]x=http://y"}, `unknown key`},
		{[]string{"beam[ftp://x/].destination=http://y"}, `entry point: "ftp://x/": scheme "ftp"`},
		{[]string{e + ".colour=red"}, `unknown Beam field "colour"`},
		{[]string{e + ".destination=not a url"}, `destination: "not a url"`},
		{[]string{e + ".enabled=yes"}, `enabled: "yes" is not true or false`},
		{[]string{e + "=x"}, `only an empty value`},
		{[]string{e + "="}, `no such Beam entry`},
		{[]string{e + ".customHeaders[X A].action=replace"}, `is not an HTTP header name`},
		{[]string{e + ".customHeaders[X-A].action=insert"}, `"insert" is not append, replace or delete`},
		{[]string{e + ".customHeaders[X-A].colour=red"}, `unknown custom header field`},
		{[]string{"novalue"}, `want key=value`},
		{[]string{"=x"}, `empty key`},
		// Whole-group checks when stored.
		{[]string{e + ".name=web"}, `destination: missing on an enabled entry`},
		{[]string{e + ".destination=http://d/", e + ".addSignature=true"}, `addSignature: needs psk`},
		{[]string{e + ".destination=http://d/", e + ".customHeaders[X-A].action=replace"}, `headerValue: missing for action replace`},
	}
	s, _ := openTemp(t)
	for _, tt := range tests {
		t.Run(strings.Join(tt.kvs, " "), func(t *testing.T) {
			_, err := s.UpdateGroup("g", func(g *Group) error { return applyAll(g, tt.kvs) })
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if g, _ := s.GetGroup("g"); !reflect.DeepEqual(g, newGroup("g")) {
				t.Fatalf("failed set stored %+v", g)
			}
		})
	}
}

// The JSON shape is the SORACOM group configuration (../shared/spec/soracom-endorse-beam.md 1.7, 2.2).
func TestGroupJSONShape(t *testing.T) {
	g := newGroup("g")
	if err := applyAll(&g, []string{"endorse.allowOrigin=https://soracom.io", "beam[http://beam.soracom.io:8888/].destination=https://x.example/"}); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"SoracomEndorse":{"enabled":true,"parametersToEndorse":{"simId":false,"imsi":true,"imei":true,"msisdn":false,"requestParameters":false},"tokenTimeoutSeconds":600,"allowOrigin":"https://soracom.io"}`,
		`"SoracomBeam":{"http://beam.soracom.io:8888/":{"destination":"https://x.example/","enabled":true,`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}

func FuzzGroupSet(f *testing.F) {
	f.Add("endorse.parametersToEndorse.imei=false")
	f.Add("beam[http://[::1]:8888/].customHeaders[X-A].action=replace")
	f.Add("beam[tcp://beam.soracom.io:8023]=")
	f.Add("endorse.authorizedRedirectUrls=https://a,https://b")
	f.Fuzz(func(t *testing.T, kv string) {
		g := newGroup("g")
		k, v, err := SplitAssignment(kv)
		if err != nil {
			return
		}
		if err := g.Set(k, v); err != nil || g.Validate() != nil {
			return
		}
		// A valid group survives its stored (JSON) form.
		b, err := json.Marshal(g)
		if err != nil {
			t.Fatal(err)
		}
		var back Group
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.Beam == nil {
			back.Beam = BeamConfig{}
		}
		if !reflect.DeepEqual(back, g) {
			t.Fatalf("JSON round trip changed %q:\n%+v\n%+v", kv, back, g)
		}
	})
}
