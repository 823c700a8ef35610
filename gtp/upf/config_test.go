package upf

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDefaultConfigValid(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestConfigTags: every field is a YAML key with a doc string, as the
// config loader needs.
func TestConfigTags(t *testing.T) {
	ty := reflect.TypeOf(Config{})
	for i := range ty.NumField() {
		f := ty.Field(i)
		if f.Tag.Get("yaml") == "" || f.Tag.Get("doc") == "" {
			t.Errorf("field %s lacks a yaml or doc tag", f.Name)
		}
	}
}

func TestConfigYAML(t *testing.T) {
	c := DefaultConfig()
	in := "n4_addr: 10.0.0.2:8805\nnode_id: upf.example.org\nn3_addr: 10.0.3.2\nn3_listen: 0.0.0.0:2153\nheartbeat_interval: 5s\nt1: 500ms\nn1: 4\ndn:\n  nat:\n    enabled: false\n    allow: [192.0.2.0/24]\n"
	if err := yaml.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.N4Addr, want.NodeID, want.N3Addr, want.N3Listen = "10.0.0.2:8805", "upf.example.org", "10.0.3.2", "0.0.0.0:2153"
	want.HeartbeatInterval, want.T1, want.N1 = 5*time.Second, 500*time.Millisecond, 4
	want.DN.NAT.Enabled, want.DN.NAT.Allow = false, []string{"192.0.2.0/24"}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if ap, err := c.N3ListenAddr(); err != nil || ap != netip.MustParseAddrPort("0.0.0.0:2153") {
		t.Errorf("N3ListenAddr = %v, %v", ap, err)
	}
	c.N3Listen = ""
	if ap, err := c.N3ListenAddr(); err != nil || ap != netip.MustParseAddrPort("10.0.3.2:2152") {
		t.Errorf("N3ListenAddr without n3_listen = %v, %v: want n3_addr:2152", ap, err)
	}
}

// TestConfigValidate: each bad value is reported with its key.
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		set  func(*Config)
		key  string
	}{
		{"empty n4", func(c *Config) { c.N4Addr = "" }, "upf.n4_addr"},
		{"n4 hostname", func(c *Config) { c.N4Addr = "upf:8805" }, "upf.n4_addr"},
		{"n4 unspecified without node id", func(c *Config) { c.N4Addr = "0.0.0.0:8805" }, "upf.node_id"},
		{"n4 unspecified with FQDN node id", func(c *Config) { c.N4Addr = ":8805"; c.NodeID = "upf.example.org" }, "upf.n4_addr"},
		{"bad node id", func(c *Config) { c.NodeID = "upf..org" }, "upf.node_id"},
		{"bad n3", func(c *Config) { c.N3Addr = "n3" }, "upf.n3_addr"},
		{"unspecified n3", func(c *Config) { c.N3Addr = "0.0.0.0" }, "upf.n3_addr"},
		{"negative heartbeat", func(c *Config) { c.HeartbeatInterval = -time.Second }, "upf.heartbeat_interval"},
		{"zero t1", func(c *Config) { c.T1 = 0 }, "upf.t1"},
		{"huge n1", func(c *Config) { c.N1 = 100 }, "upf.n1"},
		{"negative n1", func(c *Config) { c.N1 = -1 }, "upf.n1"},
		{"bad n3_listen", func(c *Config) { c.N3Listen = "n3:2152" }, "upf.n3_listen"},
		{"bad dn address", func(c *Config) { c.DN.EndorseAddr = "127.0.0.1" }, "upf.dn.endorse_addr"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.set(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.key+":") {
				t.Errorf("Validate() = %v, want an error naming %s", err, tc.key)
			}
		})
	}
	c := DefaultConfig()
	c.N4Addr, c.NodeID = "0.0.0.0:8805", "192.0.2.7"
	if _, fseid, err := c.resolve(); err != nil || fseid.String() != "192.0.2.7" {
		t.Errorf("unspecified N4 with an IP node ID: F-SEID address %v, %v", fseid, err)
	}
}
