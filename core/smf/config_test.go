package smf

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestDefaultConfigValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	r, err := c.resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := dnnEntry{name: "internet", slice: snssai{sst: 1}, prefix: netip.MustParsePrefix("10.45.0.0/16")}
	if len(r.dnns) != 1 || r.dnns[0] != want {
		t.Errorf("default DNNs %+v, want %+v", r.dnns, want)
	}
	if r.upf != netip.MustParseAddrPort("127.0.0.1:8805") {
		t.Errorf("default UPF %s", r.upf)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		key  string // the key the error names
	}{
		{"empty n4", func(c *Config) { c.N4Addr = "" }, "smf.n4_addr"},
		{"bad n4", func(c *Config) { c.N4Addr = "localhost:1" }, "smf.n4_addr"},
		{"unspecified n4 without node id", func(c *Config) { c.N4Addr = "0.0.0.0:8805" }, "smf.node_id"},
		{"unspecified n4 with fqdn", func(c *Config) { c.N4Addr = "0.0.0.0:8805"; c.NodeID = "smf.example" }, "smf.n4_addr"},
		{"bad node id", func(c *Config) { c.NodeID = "bad id!" }, "smf.node_id"},
		{"bad upf", func(c *Config) { c.UPFAddr = "upf" }, "smf.upf_addr"},
		{"empty upf", func(c *Config) { c.UPFAddr = "" }, "smf.upf_addr"},
		{"upf port 0", func(c *Config) { c.UPFAddr = "127.0.0.1:0" }, "smf.upf_addr"},
		{"unspecified upf", func(c *Config) { c.UPFAddr = "0.0.0.0" }, "smf.upf_addr"},
		{"no dnn", func(c *Config) { c.DNNs = nil }, "smf.dnns"},
		{"no =", func(c *Config) { c.DNNs = []string{"internet"} }, "smf.dnns"},
		{"ipv6 pool", func(c *Config) { c.DNNs = []string{"internet=2001:db8::/64"} }, "smf.dnns"},
		{"pool /31", func(c *Config) { c.DNNs = []string{"internet=10.0.0.0/31"} }, "smf.dnns"},
		{"pool /7", func(c *Config) { c.DNNs = []string{"internet=10.0.0.0/7"} }, "smf.dnns"},
		{"bad dnn", func(c *Config) { c.DNNs = []string{"inter_net=10.0.0.0/24"} }, "smf.dnns"},
		{"empty label", func(c *Config) { c.DNNs = []string{"a..b=10.0.0.0/24"} }, "smf.dnns"},
		{"long label", func(c *Config) { c.DNNs = []string{strings.Repeat("a", 64) + "=10.0.0.0/24"} }, "smf.dnns"},
		{"long dnn", func(c *Config) { c.DNNs = []string{strings.Repeat("abcdefgh.", 12) + "x=10.0.0.0/24"} }, "smf.dnns"},
		{"sst 0", func(c *Config) { c.DNNs = []string{"internet@0=10.0.0.0/24"} }, "smf.dnns"},
		{"sst 256", func(c *Config) { c.DNNs = []string{"internet@256=10.0.0.0/24"} }, "smf.dnns"},
		{"bad sd", func(c *Config) { c.DNNs = []string{"internet@1:12345=10.0.0.0/24"} }, "smf.dnns"},
		{"overlap", func(c *Config) { c.DNNs = []string{"a=10.0.0.0/16", "b=10.0.128.0/24"} }, "smf.dnns"},
		{"same dnn same slice", func(c *Config) { c.DNNs = []string{"a@1=10.0.0.0/24", "A@1=10.1.0.0/24"} }, "smf.dnns"},
		{"same dnn any slice", func(c *Config) { c.DNNs = []string{"a=10.0.0.0/24", "a@2=10.1.0.0/24"} }, "smf.dnns"},
		{"ambr ul 0", func(c *Config) { c.AMBRUplinkKbps = 0 }, "smf.session_ambr_uplink_kbps"},
		{"ambr dl huge", func(c *Config) { c.AMBRDownlinkKbps = 4_000_000_001 }, "smf.session_ambr_downlink_kbps"},
		{"gbr 5qi", func(c *Config) { c.FiveQI = 1 }, "smf.five_qi"},
		{"5qi 0", func(c *Config) { c.FiveQI = 0 }, "smf.five_qi"},
		{"arp 0", func(c *Config) { c.ARPPriority = 0 }, "smf.arp_priority_level"},
		{"arp 16", func(c *Config) { c.ARPPriority = 16 }, "smf.arp_priority_level"},
		{"heartbeat", func(c *Config) { c.HeartbeatInterval = -time.Second }, "smf.heartbeat_interval"},
		{"t1", func(c *Config) { c.T1 = 0 }, "smf.t1"},
		{"n1", func(c *Config) { c.N1 = 21 }, "smf.n1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.key+":") {
				t.Fatalf("error %q does not name %s", err, tc.key)
			}
		})
	}
}

func TestParseDNNEntry(t *testing.T) {
	tests := []struct {
		in   string
		want dnnEntry
	}{
		{"internet=10.45.0.0/16", dnnEntry{name: "internet", anySlice: true, prefix: netip.MustParsePrefix("10.45.0.0/16")}},
		{"Internet@1=10.45.0.0/16", dnnEntry{name: "internet", slice: snssai{sst: 1}, prefix: netip.MustParsePrefix("10.45.0.0/16")}},
		{"iot.example@2:0A0b0C=10.46.1.9/24", dnnEntry{name: "iot.example", slice: snssai{sst: 2, sd: [3]byte{0x0a, 0x0b, 0x0c}, hasSD: true}, prefix: netip.MustParsePrefix("10.46.1.0/24")}},
		{"ims@5:ffffff=10.47.0.0/30", dnnEntry{name: "ims", slice: snssai{sst: 5}, prefix: netip.MustParsePrefix("10.47.0.0/30")}},
		{" a-1 = 10.0.0.0/8 ", dnnEntry{name: "a-1", anySlice: true, prefix: netip.MustParsePrefix("10.0.0.0/8")}},
	}
	for _, tc := range tests {
		got, err := parseDNNEntry(tc.in)
		if err != nil {
			t.Errorf("parseDNNEntry(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want {
			t.Errorf("parseDNNEntry(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}
