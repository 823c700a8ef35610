package dn

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeResolver is a host resolver with fixed records.
type fakeResolver struct {
	a     map[string][]netip.Addr // "ip4" and "ip" lookups
	v6    map[string]bool         // names with only IPv6 addresses
	cname map[string]string
	mx    map[string][]*net.MX
	txt   map[string][]string
	ptr   map[string][]string
	fail  error // every lookup fails with it
}

var errNotFound = &net.DNSError{Err: "no such host", IsNotFound: true}

func (f *fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	if as, ok := f.a[host]; ok {
		return as, nil
	}
	if f.v6[host] && network == "ip" {
		return []netip.Addr{netip.MustParseAddr("2001:db8::1")}, nil
	}
	return nil, errNotFound
}

func (f *fakeResolver) LookupCNAME(_ context.Context, host string) (string, error) {
	if f.fail != nil {
		return "", f.fail
	}
	if c, ok := f.cname[host]; ok {
		return c, nil
	}
	if _, ok := f.a[host]; ok {
		return host + ".", nil
	}
	return "", errNotFound
}

func (f *fakeResolver) LookupMX(_ context.Context, name string) ([]*net.MX, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	if mx, ok := f.mx[name]; ok {
		return mx, nil
	}
	return nil, errNotFound
}

func (f *fakeResolver) LookupNS(context.Context, string) ([]*net.NS, error) { return nil, errNotFound }

func (f *fakeResolver) LookupAddr(_ context.Context, addr string) ([]string, error) {
	if names, ok := f.ptr[addr]; ok {
		return names, nil
	}
	return nil, errNotFound
}

func (f *fakeResolver) LookupSRV(context.Context, string, string, string) (string, []*net.SRV, error) {
	return "", nil, errNotFound
}

func (f *fakeResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	if t, ok := f.txt[name]; ok {
		return t, nil
	}
	return nil, errNotFound
}

func testResolver() *fakeResolver {
	return &fakeResolver{
		a:     map[string][]netip.Addr{"example.com": {netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("192.0.2.11")}},
		v6:    map[string]bool{"v6only.example": true},
		cname: map[string]string{"www.example.com": "example.com."},
		mx:    map[string][]*net.MX{"example.com": {{Host: "mail.example.com.", Pref: 10}}},
		txt:   map[string][]string{"example.com": {"v=spf1 -all"}, "big.example": {strings.Repeat("t", 500), strings.Repeat("u", 500)}},
		ptr:   map[string][]string{"192.0.2.10": {"example.com."}},
	}
}

// buildQuery is a DNS query for name and type, with an EDNS OPT of 1232 if
// edns.
func buildQuery(tb testing.TB, name string, t dnsmessage.Type, edns bool) []byte {
	tb.Helper()
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: 0xbeef, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: t, Class: dnsmessage.ClassINET}},
	}
	if edns {
		var h dnsmessage.ResourceHeader
		_ = h.SetEDNS0(1232, dnsmessage.RCodeSuccess, false)
		m.Additionals = []dnsmessage.Resource{{Header: h, Body: &dnsmessage.OPTResource{}}}
	}
	b, err := m.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// answerText renders the answers of a response as "TYPE value" lines.
func answerText(m *dnsmessage.Message) []string {
	var out []string
	for _, a := range m.Answers {
		var v string
		switch b := a.Body.(type) {
		case *dnsmessage.AResource:
			v = netip.AddrFrom4(b.A).String()
		case *dnsmessage.PTRResource:
			v = b.PTR.String()
		case *dnsmessage.CNAMEResource:
			v = b.CNAME.String()
		case *dnsmessage.MXResource:
			v = b.MX.String()
		case *dnsmessage.TXTResource:
			v = strings.Join(b.TXT, "|")
			if len(v) > 40 {
				v = v[:40]
			}
		}
		out = append(out, a.Header.Type.String()+" "+v)
	}
	return out
}

// TestRespond: the responder, message by message.
func TestRespond(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Hosts = []string{"MQTT.Example.Test=100.127.1.1"}
	s, err := cfg.resolve()
	if err != nil {
		t.Fatal(err)
	}
	off := *s
	off.nat = false
	failing := &fakeResolver{fail: &net.DNSError{Err: "i/o timeout", IsTimeout: true}}
	tests := []struct {
		name    string
		s       *settings
		res     Resolver
		q       []byte
		tcp     bool
		rcode   dnsmessage.RCode
		aa, tc  bool
		answers []string
		opt     bool
	}{
		{name: "endorse", q: buildQuery(t, "endorse.soracom.io.", dnsmessage.TypeA, false), aa: true, answers: []string{"TypeA 100.127.0.10"}},
		{name: "beam, mixed case, EDNS", q: buildQuery(t, "BEAM.Soracom.IO.", dnsmessage.TypeA, true), aa: true, answers: []string{"TypeA 100.127.127.100"}, opt: true},
		{name: "host alias", q: buildQuery(t, "host.simgate.internal.", dnsmessage.TypeA, false), aa: true, answers: []string{"TypeA 100.127.0.1"}},
		{name: "configured host", q: buildQuery(t, "mqtt.example.test.", dnsmessage.TypeA, false), aa: true, answers: []string{"TypeA 100.127.1.1"}},
		{name: "ANY local", q: buildQuery(t, "endorse.soracom.io.", dnsmessage.TypeALL, false), aa: true, answers: []string{"TypeA 100.127.0.10"}},
		{name: "AAAA local: NODATA", q: buildQuery(t, "endorse.soracom.io.", dnsmessage.TypeAAAA, false), aa: true},
		{name: "MX local: NODATA", q: buildQuery(t, "beam.soracom.io.", dnsmessage.TypeMX, false), aa: true},
		{name: "PTR local", q: buildQuery(t, "10.0.127.100.in-addr.arpa.", dnsmessage.TypePTR, false), aa: true, answers: []string{"TypePTR endorse.soracom.io."}},
		{name: "PTR local host", q: buildQuery(t, "1.1.127.100.in-addr.arpa.", dnsmessage.TypePTR, false), aa: true, answers: []string{"TypePTR mqtt.example.test."}},
		{name: "local with NAT off", s: &off, q: buildQuery(t, "endorse.soracom.io.", dnsmessage.TypeA, false), aa: true, answers: []string{"TypeA 100.127.0.10"}},
		{name: "forward A", q: buildQuery(t, "example.com.", dnsmessage.TypeA, false), answers: []string{"TypeA 192.0.2.10", "TypeA 192.0.2.11"}},
		{name: "forward A over TCP", q: buildQuery(t, "example.com.", dnsmessage.TypeA, false), tcp: true, answers: []string{"TypeA 192.0.2.10", "TypeA 192.0.2.11"}},
		{name: "forward AAAA: NODATA", q: buildQuery(t, "example.com.", dnsmessage.TypeAAAA, false)},
		{name: "forward A, v6 only: NODATA", q: buildQuery(t, "v6only.example.", dnsmessage.TypeA, false)},
		{name: "forward CNAME", q: buildQuery(t, "www.example.com.", dnsmessage.TypeCNAME, false), answers: []string{"TypeCNAME example.com."}},
		{name: "forward CNAME of canonical: NODATA", q: buildQuery(t, "example.com.", dnsmessage.TypeCNAME, false)},
		{name: "forward MX", q: buildQuery(t, "example.com.", dnsmessage.TypeMX, false), answers: []string{"TypeMX mail.example.com."}},
		{name: "forward TXT", q: buildQuery(t, "example.com.", dnsmessage.TypeTXT, false), answers: []string{"TypeTXT v=spf1 -all"}},
		{name: "forward PTR", q: buildQuery(t, "10.2.0.192.in-addr.arpa.", dnsmessage.TypePTR, false), answers: []string{"TypePTR example.com."}},
		{name: "NXDOMAIN", q: buildQuery(t, "nope.example.", dnsmessage.TypeA, false), rcode: dnsmessage.RCodeNameError},
		{name: "MX of existing name without MX: NODATA", q: buildQuery(t, "v6only.example.", dnsmessage.TypeMX, false)},
		{name: "SERVFAIL", res: failing, q: buildQuery(t, "example.com.", dnsmessage.TypeA, false), rcode: dnsmessage.RCodeServerFailure},
		{name: "NAT off: REFUSED", s: &off, q: buildQuery(t, "example.com.", dnsmessage.TypeA, false), rcode: dnsmessage.RCodeRefused},
		{name: "type not forwarded", q: buildQuery(t, "example.com.", dnsmessage.TypeSOA, false), rcode: dnsmessage.RCodeNotImplemented},
		{name: "PTR of a non-reverse name", q: buildQuery(t, "example.com.", dnsmessage.TypePTR, false), rcode: dnsmessage.RCodeNotImplemented},
		{name: "big TXT over UDP: truncated", q: buildQuery(t, "big.example.", dnsmessage.TypeTXT, false), tc: true},
		{name: "big TXT over UDP with EDNS", q: buildQuery(t, "big.example.", dnsmessage.TypeTXT, true), answers: []string{"TypeTXT " + strings.Repeat("t", 40), "TypeTXT " + strings.Repeat("u", 40)}, opt: true},
		{name: "big TXT over TCP", q: buildQuery(t, "big.example.", dnsmessage.TypeTXT, false), tcp: true, answers: []string{"TypeTXT " + strings.Repeat("t", 40), "TypeTXT " + strings.Repeat("u", 40)}},
		{name: "opcode STATUS", q: withHeader(t, buildQuery(t, "example.com.", dnsmessage.TypeA, false), func(b []byte) { b[2] |= 2 << 3 }), rcode: dnsmessage.RCodeNotImplemented},
		{name: "two questions", q: twoQuestions(t), rcode: dnsmessage.RCodeFormatError},
		{name: "no question", q: withHeader(t, buildQuery(t, "example.com.", dnsmessage.TypeA, false)[:12], func(b []byte) { b[5] = 0 }), rcode: dnsmessage.RCodeFormatError},
		{name: "truncated question", q: buildQuery(t, "example.com.", dnsmessage.TypeA, false)[:20], rcode: dnsmessage.RCodeFormatError},
		{name: "class CHAOS", q: withHeader(t, buildQuery(t, "version.bind.", dnsmessage.TypeTXT, false), func(b []byte) { b[len(b)-1] = 3 }), rcode: dnsmessage.RCodeNotImplemented},
		{name: "EDNS version 1: BADVERS", q: withHeader(t, buildQuery(t, "example.com.", dnsmessage.TypeA, true), func(b []byte) { b[len(b)-5] = 1 }), rcode: 0, opt: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, res := s, Resolver(testResolver())
			if tc.s != nil {
				st = tc.s
			}
			if tc.res != nil {
				res = tc.res
			}
			r := newResponder(st, res, &counters{})
			out := r.respond(context.Background(), tc.q, tc.tcp)
			if out == nil {
				t.Fatal("no response")
			}
			var m dnsmessage.Message
			if err := m.Unpack(out); err != nil {
				t.Fatalf("response does not parse: %v", err)
			}
			if m.Header.ID != 0xbeef || !m.Header.Response {
				t.Errorf("header %+v: want ID 0xbeef, QR", m.Header)
			}
			if m.Header.RCode != tc.rcode {
				t.Errorf("rcode %v, want %v", m.Header.RCode, tc.rcode)
			}
			if m.Header.Authoritative != tc.aa || m.Header.Truncated != tc.tc {
				t.Errorf("AA %v TC %v, want %v %v", m.Header.Authoritative, m.Header.Truncated, tc.aa, tc.tc)
			}
			if m.Header.RecursionAvailable != st.nat {
				t.Errorf("RA %v with NAT %v", m.Header.RecursionAvailable, st.nat)
			}
			if got := answerText(&m); !slices.Equal(got, tc.answers) {
				t.Errorf("answers %q, want %q", got, tc.answers)
			}
			if (len(m.Additionals) == 1) != tc.opt {
				t.Errorf("%d additional records, want OPT: %v", len(m.Additionals), tc.opt)
			}
			if !tc.tcp && len(out) > dnsUDPMax {
				t.Errorf("UDP response of %d bytes", len(out))
			}
			for _, a := range m.Answers {
				if a.Header.Name.String() != m.Questions[0].Name.String() && a.Header.Type != dnsmessage.TypePTR {
					t.Errorf("answer owner %s, question %s", a.Header.Name, m.Questions[0].Name)
				}
			}
		})
	}
}

// TestRespondBadVers: the OPT of a BADVERS answer carries extended rcode 16.
func TestRespondBadVers(t *testing.T) {
	s, _ := DefaultConfig().resolve()
	q := withHeader(t, buildQuery(t, "example.com.", dnsmessage.TypeA, true), func(b []byte) { b[len(b)-5] = 1 })
	out := newResponder(s, testResolver(), &counters{}).respond(context.Background(), q, false)
	var m dnsmessage.Message
	if err := m.Unpack(out); err != nil {
		t.Fatal(err)
	}
	if len(m.Additionals) != 1 {
		t.Fatalf("no OPT")
	}
	if got := m.Additionals[0].Header.ExtendedRCode(m.Header.RCode); got != rcodeBadVers {
		t.Errorf("extended rcode %d, want 16 (BADVERS)", got)
	}
}

// TestRespondSilent: nothing answers a response or a runt.
func TestRespondSilent(t *testing.T) {
	s, _ := DefaultConfig().resolve()
	r := newResponder(s, testResolver(), &counters{})
	resp := withHeader(t, buildQuery(t, "example.com.", dnsmessage.TypeA, false), func(b []byte) { b[2] |= 0x80 })
	for _, q := range [][]byte{nil, {1, 2, 3}, resp} {
		if out := r.respond(context.Background(), q, false); out != nil {
			t.Errorf("answered % x", q)
		}
	}
}

func withHeader(tb testing.TB, b []byte, f func([]byte)) []byte {
	tb.Helper()
	b = slices.Clone(b)
	f(b)
	return b
}

func twoQuestions(tb testing.TB) []byte {
	tb.Helper()
	m := dnsmessage.Message{Header: dnsmessage.Header{ID: 0xbeef}, Questions: []dnsmessage.Question{
		{Name: dnsmessage.MustNewName("a.example."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
		{Name: dnsmessage.MustNewName("b.example."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET},
	}}
	b, err := m.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestReverseAddr: IPv4 reverse names.
func TestReverseAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"10.0.127.100.in-addr.arpa", "100.127.0.10"},
		{"1.2.3.4.in-addr.arpa", "4.3.2.1"},
		{"255.255.255.255.in-addr.arpa", "255.255.255.255"},
		{"2.3.4.in-addr.arpa", ""},
		{"256.2.3.4.in-addr.arpa", ""},
		{"01.2.3.4.in-addr.arpa", ""},
		{"a.2.3.4.in-addr.arpa", ""},
		{"1.2.3.4.ip6.arpa", ""},
		{".2.3.4.in-addr.arpa", ""},
	}
	for _, tc := range tests {
		a, ok := reverseAddr(tc.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("reverseAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestDNSFromDevice: a device's own stub resolver (Go's, over UDP and over
// TCP) asks the in-network DNS address through the stack.
func TestDNSFromDevice(t *testing.T) {
	cfg := testConfig()
	cfg.Hosts = []string{"server.test=100.127.2.2"}
	d := startDN(t, cfg, WithResolver(testResolver()))
	u := newUE(t, d, ueAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := u.resolver()
	for name, want := range map[string]string{
		EndorseName:   DefaultEndorseAddr,
		BeamName:      DefaultBeamAddr,
		HostAliasName: DefaultHostAlias,
		"server.test": "100.127.2.2",
		"example.com": "192.0.2.10",
	} {
		addrs, err := res.LookupNetIP(ctx, "ip4", name)
		if err != nil {
			t.Errorf("lookup %s: %v", name, err)
			continue
		}
		if addrs[0].String() != want {
			t.Errorf("lookup %s = %v, want %s", name, addrs, want)
		}
	}
	if _, err := res.LookupNetIP(ctx, "ip4", "nope.example"); err == nil {
		t.Error("nope.example resolved")
	} else if de := (*net.DNSError)(nil); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("nope.example: %v, want not found", err)
	}

	// Over TCP, by hand: two pipelined queries on one connection.
	c, err := u.dialTCP(ctx, netip.AddrPortFrom(d.s.dns, DNSPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []byte
	for _, name := range []string{"endorse.soracom.io.", "beam.soracom.io."} {
		q := buildQuery(t, name, dnsmessage.TypeA, false)
		out = binary.BigEndian.AppendUint16(out, uint16(len(q)))
		out = append(out, q...)
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{DefaultEndorseAddr, DefaultBeamAddr} {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatal(err)
		}
		msg := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			t.Fatal(err)
		}
		var m dnsmessage.Message
		if err := m.Unpack(msg); err != nil {
			t.Fatal(err)
		}
		if got := answerText(&m); len(got) != 1 || got[0] != "TypeA "+want {
			t.Errorf("TCP answer %q, want %s", got, want)
		}
	}
	if st := d.Stats(); st.DNSQueries < 7 || st.DNSForwarded < 2 {
		t.Errorf("stats %+v: want at least 7 queries, 2 forwarded", st)
	}
}

// FuzzRespond: whatever arrives, the responder does not panic, and what it
// sends is a parseable response to the same ID that fits the transport.
func FuzzRespond(f *testing.F) {
	f.Add(buildQuery(f, "endorse.soracom.io.", dnsmessage.TypeA, false), false)
	f.Add(buildQuery(f, "example.com.", dnsmessage.TypeMX, true), false)
	f.Add(buildQuery(f, "big.example.", dnsmessage.TypeTXT, false), true)
	f.Add(buildQuery(f, "10.0.127.100.in-addr.arpa.", dnsmessage.TypePTR, false), false)
	f.Add(twoQuestions(f), false)
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1}, false) // pointer loop
	s, err := DefaultConfig().resolve()
	if err != nil {
		f.Fatal(err)
	}
	r := newResponder(s, testResolver(), &counters{})
	f.Fuzz(func(t *testing.T, msg []byte, tcp bool) {
		out := r.respond(context.Background(), msg, tcp)
		if out == nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(out)
		if err != nil {
			t.Fatalf("response does not parse: %v", err)
		}
		if !h.Response || h.ID != binary.BigEndian.Uint16(msg) {
			t.Fatalf("response header %+v to ID %#x", h, binary.BigEndian.Uint16(msg))
		}
		if _, err := p.AllQuestions(); err != nil {
			t.Fatalf("response questions: %v", err)
		}
		if _, err := p.AllAnswers(); err != nil {
			t.Fatalf("response answers: %v", err)
		}
		limit := dnsUDPMax
		if tcp {
			limit = 65535
		}
		if len(out) > limit {
			t.Fatalf("response of %d bytes", len(out))
		}
	})
}
