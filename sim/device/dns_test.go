package device

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

type rr struct {
	name, typ, data string
	class           dnsmessage.Class
}

// dnsAnswer builds a response to q with header h and answers rrs.
func dnsAnswer(t testing.TB, h dnsmessage.Header, q dnsmessage.Question, rrs ...rr) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, h)
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		t.Fatal(err)
	}
	if q.Name.Length > 0 {
		if err := b.Question(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.StartAnswers(); err != nil {
		t.Fatal(err)
	}
	for _, r := range rrs {
		class := r.class
		if class == 0 {
			class = dnsmessage.ClassINET
		}
		rh := dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(r.name), Class: class, TTL: 30}
		var err error
		switch r.typ {
		case "A":
			err = b.AResource(rh, dnsmessage.AResource{A: netip.MustParseAddr(r.data).As4()})
		case "AAAA":
			err = b.AAAAResource(rh, dnsmessage.AAAAResource{AAAA: netip.MustParseAddr(r.data).As16()})
		case "CNAME":
			err = b.CNAMEResource(rh, dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(r.data)})
		case "TXT":
			err = b.TXTResource(rh, dnsmessage.TXTResource{TXT: []string{r.data}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	m, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseAnswer(t *testing.T) {
	const id = 0x1234
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("endorse.soracom.io."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	ok := dnsmessage.Header{ID: id, Response: true, RecursionDesired: true, RecursionAvailable: true}
	with := func(f func(*dnsmessage.Header)) dnsmessage.Header { h := ok; f(&h); return h }
	otherQ := q
	otherQ.Name = dnsmessage.MustNewName("beam.soracom.io.")
	aaaaQ := q
	aaaaQ.Type = dnsmessage.TypeAAAA
	for _, tc := range []struct {
		name      string
		msg       []byte
		want      string // addresses, or the error's text
		truncated bool
		notFound  bool
	}{
		{"one A", dnsAnswer(t, ok, q, rr{"endorse.soracom.io.", "A", "100.127.0.10", 0}), "[100.127.0.10]", false, false},
		{"two A, case-insensitive owner", dnsAnswer(t, ok, q,
			rr{"ENDORSE.soracom.io.", "A", "100.127.0.10", 0}, rr{"endorse.soracom.io.", "A", "100.127.0.12", 0}),
			"[100.127.0.10 100.127.0.12]", false, false},
		{"CNAME chain", dnsAnswer(t, ok, q,
			rr{"endorse.soracom.io.", "CNAME", "a.example.", 0}, rr{"a.example.", "CNAME", "b.example.", 0},
			rr{"b.example.", "A", "192.0.2.7", 0}), "[192.0.2.7]", false, false},
		{"CNAME loop", dnsAnswer(t, ok, q,
			rr{"endorse.soracom.io.", "CNAME", "a.example.", 0}, rr{"a.example.", "CNAME", "endorse.soracom.io.", 0}),
			"no A record", false, true},
		{"A for another name only", dnsAnswer(t, ok, q, rr{"evil.example.", "A", "192.0.2.66", 0}), "no A record", false, true},
		{"other class and types skipped", dnsAnswer(t, ok, q,
			rr{"endorse.soracom.io.", "A", "192.0.2.1", dnsmessage.ClassCHAOS}, rr{"endorse.soracom.io.", "AAAA", "2001:db8::1", 0},
			rr{"endorse.soracom.io.", "TXT", "x", 0}, rr{"endorse.soracom.io.", "A", "100.127.0.10", 0}),
			"[100.127.0.10]", false, false},
		{"no answers", dnsAnswer(t, ok, q), "no A record", false, true},
		{"NXDOMAIN", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.RCode = dnsmessage.RCodeNameError }), q), "no such host", false, true},
		{"SERVFAIL", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.RCode = dnsmessage.RCodeServerFailure }), q), "server failure", false, false},
		{"REFUSED", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.RCode = dnsmessage.RCodeRefused }), q), "server answered RCodeRefused", false, false},
		{"truncated", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.Truncated = true }), q), "[]", true, false},
		{"other id", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.ID = id + 1 }), q), errMismatch.Error(), false, false},
		{"a query", dnsAnswer(t, with(func(h *dnsmessage.Header) { h.Response = false }), q), errMismatch.Error(), false, false},
		{"other question", dnsAnswer(t, ok, otherQ, rr{"beam.soracom.io.", "A", "100.127.127.100", 0}), errMismatch.Error(), false, false},
		{"other type", dnsAnswer(t, ok, aaaaQ), errMismatch.Error(), false, false},
		{"no question", dnsAnswer(t, ok, dnsmessage.Question{}), errMismatch.Error(), false, false},
		{"short", []byte{0x12, 0x34, 0x81}, "dns: bad answer", false, false},
	} {
		got, truncated, err := parseAnswer(tc.msg, id, q)
		text := fmt.Sprint(got)
		if err != nil {
			text = err.Error()
		}
		var de *dnsError
		notFound := errors.As(err, &de) && de.notFound
		if !strings.HasPrefix(text, tc.want) || truncated != tc.truncated || notFound != tc.notFound {
			t.Errorf("%s: %s truncated %v notFound %v; want %s %v %v", tc.name, text, truncated, notFound, tc.want, tc.truncated, tc.notFound)
		}
	}
}

func TestDNSName(t *testing.T) {
	long := strings.Repeat("a", 63)
	for _, tc := range []struct {
		in, want string
	}{
		{"endorse.soracom.io", "endorse.soracom.io."},
		{"endorse.soracom.io.", "endorse.soracom.io."},
		{"_srv.x-y.example", "_srv.x-y.example."},
		{long + ".example", long + ".example."},
		{"", ""},
		{".", ""},
		{"a..b", ""},
		{long + "a.example", ""},
		{strings.Repeat("a.", 127) + "ab", ""}, // 256 octets
		{"exa mple.com", ""},
		{"exämple.com", ""},
	} {
		n, err := dnsName(tc.in)
		got := ""
		if err == nil {
			got = n.String()
		}
		if got != tc.want {
			t.Errorf("dnsName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// buildQuery makes what the network's server (and any resolver) parses.
func TestBuildQuery(t *testing.T) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("endorse.soracom.io."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	b, err := buildQuery(0xbeef, q)
	if err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		t.Fatal(err)
	}
	if m.ID != 0xbeef || m.Response || !m.RecursionDesired || len(m.Questions) != 1 || m.Questions[0] != q {
		t.Errorf("query %+v", m)
	}
}

// FuzzParseAnswer: any bytes from the network give addresses or an error,
// never a panic; addresses only come with a success.
func FuzzParseAnswer(f *testing.F) {
	q := dnsmessage.Question{Name: dnsmessage.MustNewName("endorse.soracom.io."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	h := dnsmessage.Header{ID: 7, Response: true}
	f.Add(dnsAnswer(f, h, q, rr{"endorse.soracom.io.", "A", "100.127.0.10", 0}))
	f.Add(dnsAnswer(f, h, q, rr{"endorse.soracom.io.", "CNAME", "a.example.", 0}, rr{"a.example.", "A", "192.0.2.1", 0}))
	f.Add(dnsAnswer(f, dnsmessage.Header{ID: 7, Response: true, Truncated: true}, q))
	f.Add([]byte{0, 7, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0, 0x0c})
	f.Fuzz(func(t *testing.T, msg []byte) {
		addrs, truncated, err := parseAnswer(msg, 7, q)
		if err != nil && (len(addrs) > 0 || truncated) {
			t.Fatalf("error %v with addresses %v truncated %v", err, addrs, truncated)
		}
		if err == nil && !truncated && len(addrs) == 0 {
			t.Fatal("success without addresses")
		}
		for _, a := range addrs {
			if !a.Is4() {
				t.Fatalf("address %s", a)
			}
		}
	})
}
