package dn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
)

const (
	dnsTTL         = 60               // seconds, local and forwarded answers
	dnsUDPMin      = 512              // RFC 1035 4.2.1: UDP messages without EDNS
	dnsUDPMax      = 1232             // RFC 9715 3: EDNS payload size that avoids fragmentation
	dnsLookupWait  = 5 * time.Second  // a host resolver lookup
	dnsTCPIdle     = 10 * time.Second // RFC 7766 6.2.3: idle TCP connection
	dnsMaxPending  = 256              // UDP queries being answered at once
	dnsMaxTCPConns = 64               // TCP connections served at once
)

// rcodeBadVers is BADVERS (RFC 6891 6.1.3), an extended RCODE.
const rcodeBadVers dnsmessage.RCode = 16

// responder answers DNS queries (doc.go): the in-network names locally,
// other names through the host resolver when forwarding is on.
type responder struct {
	names   map[string]netip.Addr // lower case, no trailing dot
	ptrs    map[netip.Addr]string // the name each address's PTR gives
	forward bool
	res     Resolver
	c       *counters
}

func newResponder(s *settings, res Resolver, c *counters) *responder {
	r := &responder{names: s.names, ptrs: map[netip.Addr]string{}, forward: s.nat, res: res, c: c}
	// PTR: the service names first, then the other hosts in name order.
	names := []string{EndorseName, BeamName, HostAliasName}
	var more []string
	for n := range s.names {
		if !slices.Contains(names, n) {
			more = append(more, n)
		}
	}
	slices.Sort(more)
	for _, n := range append(names, more...) {
		if a, ok := s.names[n]; ok {
			if _, taken := r.ptrs[a]; !taken {
				r.ptrs[a] = n
			}
		}
	}
	return r
}

// query is a parsed DNS query.
type query struct {
	h       dnsmessage.Header
	q       dnsmessage.Question
	edns    bool
	udpSize int
}

// respond answers the DNS message msg (received over TCP if tcp). It
// returns nil when nothing must be sent back: msg is shorter than a header,
// or is itself a response (RFC 1035 7.3: never answer those).
func (r *responder) respond(ctx context.Context, msg []byte, tcp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || h.Response {
		return nil
	}
	r.c.dnsQueries.Add(1)
	rh := dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, RecursionDesired: h.RecursionDesired,
		RecursionAvailable: r.forward}
	if h.OpCode != 0 { // RFC 1035 4.1.1: only QUERY
		return pack(rh, dnsmessage.RCodeNotImplemented, nil, nil, nil)
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 { // RFC 9619: exactly one question
		return pack(rh, dnsmessage.RCodeFormatError, nil, nil, nil)
	}
	qr := query{h: h, q: qs[0], udpSize: dnsUDPMin}
	var opt *dnsmessage.Resource
	if err := p.SkipAllAnswers(); err != nil {
		return pack(rh, dnsmessage.RCodeFormatError, nil, nil, nil)
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return pack(rh, dnsmessage.RCodeFormatError, nil, nil, nil)
	}
	for {
		ah, err := p.AdditionalHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return pack(rh, dnsmessage.RCodeFormatError, nil, nil, nil)
		}
		if ah.Type == dnsmessage.TypeOPT {
			if qr.edns || ah.Name.String() != "." { // RFC 6891 6.1.1: one OPT, owner root
				return pack(rh, dnsmessage.RCodeFormatError, nil, nil, nil)
			}
			qr.edns = true
			qr.udpSize = min(max(int(ah.Class), dnsUDPMin), dnsUDPMax)
			opt = ednsOPT(dnsmessage.RCodeSuccess)
			if ah.TTL>>16&0xff != 0 { // RFC 6891 6.1.3: only version 0
				opt = ednsOPT(rcodeBadVers)
				return pack(rh, rcodeBadVers&0xf, &qr.q, nil, opt)
			}
		}
		if err := p.SkipAdditional(); err != nil {
			return pack(rh, dnsmessage.RCodeFormatError, nil, nil, nil)
		}
	}
	limit := qr.udpSize
	if tcp {
		limit = 65535
	}
	rcode, aa, answers := r.answer(ctx, qr.q)
	rh.Authoritative = aa
	out := pack(rh, rcode, &qr.q, answers, opt)
	if out == nil {
		// An answer that cannot be encoded (a host resolver's odd name).
		rh.Authoritative = false
		out = pack(rh, dnsmessage.RCodeServerFailure, &qr.q, nil, opt)
	}
	if len(out) > limit {
		// RFC 2181 9: too big for UDP: set TC and send what fits, here
		// the question alone; the client retries over TCP.
		rh.Truncated = true
		out = pack(rh, rcode, &qr.q, nil, opt)
	}
	return out
}

// ednsOPT is our OPT record (RFC 6891 6.1.2) with the extended rcode.
func ednsOPT(rcode dnsmessage.RCode) *dnsmessage.Resource {
	var h dnsmessage.ResourceHeader
	_ = h.SetEDNS0(dnsUDPMax, rcode, false)
	return &dnsmessage.Resource{Header: h, Body: &dnsmessage.OPTResource{}}
}

// pack encodes a response; nil if it cannot be encoded.
func pack(h dnsmessage.Header, rcode dnsmessage.RCode, q *dnsmessage.Question, answers []dnsmessage.Resource, opt *dnsmessage.Resource) []byte {
	h.RCode = rcode
	m := dnsmessage.Message{Header: h, Answers: answers}
	if q != nil {
		m.Questions = []dnsmessage.Question{*q}
	}
	if opt != nil {
		m.Additionals = []dnsmessage.Resource{*opt}
	}
	b, err := m.Pack()
	if err != nil {
		if q != nil && answers == nil {
			// The question itself does not encode (an over-long name):
			// answer without it.
			m.Questions = nil
			m.Header.RCode = dnsmessage.RCodeFormatError
			if b, err = m.Pack(); err == nil {
				return b
			}
		}
		return nil
	}
	return b
}

// answer resolves q: the rcode, whether the answer is authoritative, and
// the answer records.
func (r *responder) answer(ctx context.Context, q dnsmessage.Question) (dnsmessage.RCode, bool, []dnsmessage.Resource) {
	if q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY {
		return dnsmessage.RCodeNotImplemented, false, nil
	}
	name := strings.TrimSuffix(lowerASCII(q.Name.String()), ".")
	rr := func(t dnsmessage.Type, body dnsmessage.ResourceBody) dnsmessage.Resource {
		return dnsmessage.Resource{Header: dnsmessage.ResourceHeader{Name: q.Name, Type: t, Class: dnsmessage.ClassINET, TTL: dnsTTL}, Body: body}
	}
	if a, ok := r.names[name]; ok {
		switch q.Type {
		case dnsmessage.TypeA, dnsmessage.TypeALL:
			return dnsmessage.RCodeSuccess, true, []dnsmessage.Resource{rr(dnsmessage.TypeA, &dnsmessage.AResource{A: a.As4()})}
		}
		return dnsmessage.RCodeSuccess, true, nil // NODATA (RFC 2308 2.2)
	}
	if q.Type == dnsmessage.TypePTR {
		if a, ok := reverseAddr(name); ok {
			if n, ok := r.ptrs[a]; ok {
				target, err := dnsmessage.NewName(n + ".")
				if err != nil {
					return dnsmessage.RCodeServerFailure, false, nil
				}
				return dnsmessage.RCodeSuccess, true, []dnsmessage.Resource{rr(dnsmessage.TypePTR, &dnsmessage.PTRResource{PTR: target})}
			}
		}
	}
	if !r.forward {
		return dnsmessage.RCodeRefused, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, dnsLookupWait)
	defer cancel()
	r.c.dnsForwarded.Add(1)
	var out []dnsmessage.Resource
	switch q.Type {
	case dnsmessage.TypeA:
		addrs, err := r.res.LookupNetIP(ctx, "ip4", name)
		if err != nil {
			return r.negative(ctx, name, err), false, nil
		}
		for _, a := range addrs {
			if a = a.Unmap(); a.Is4() {
				out = append(out, rr(dnsmessage.TypeA, &dnsmessage.AResource{A: a.As4()}))
			}
		}
	case dnsmessage.TypeAAAA:
		// The data network is IPv4 only: a name that exists has no
		// AAAA record here.
		if _, err := r.res.LookupNetIP(ctx, "ip", name); err != nil {
			return rcodeOf(err), false, nil
		}
	case dnsmessage.TypeCNAME:
		cname, err := r.res.LookupCNAME(ctx, name)
		if err != nil {
			return r.negative(ctx, name, err), false, nil
		}
		if !strings.EqualFold(strings.TrimSuffix(cname, "."), name) {
			n, err := absName(cname)
			if err != nil {
				return dnsmessage.RCodeServerFailure, false, nil
			}
			out = append(out, rr(dnsmessage.TypeCNAME, &dnsmessage.CNAMEResource{CNAME: n}))
		}
	case dnsmessage.TypeMX:
		mxs, err := r.res.LookupMX(ctx, name)
		if err != nil {
			return r.negative(ctx, name, err), false, nil
		}
		for _, mx := range mxs {
			n, err := absName(mx.Host)
			if err != nil {
				return dnsmessage.RCodeServerFailure, false, nil
			}
			out = append(out, rr(dnsmessage.TypeMX, &dnsmessage.MXResource{Pref: mx.Pref, MX: n}))
		}
	case dnsmessage.TypeNS:
		nss, err := r.res.LookupNS(ctx, name)
		if err != nil {
			return r.negative(ctx, name, err), false, nil
		}
		for _, ns := range nss {
			n, err := absName(ns.Host)
			if err != nil {
				return dnsmessage.RCodeServerFailure, false, nil
			}
			out = append(out, rr(dnsmessage.TypeNS, &dnsmessage.NSResource{NS: n}))
		}
	case dnsmessage.TypeSRV:
		_, srvs, err := r.res.LookupSRV(ctx, "", "", name)
		if err != nil {
			return r.negative(ctx, name, err), false, nil
		}
		for _, s := range srvs {
			n, err := absName(s.Target)
			if err != nil {
				return dnsmessage.RCodeServerFailure, false, nil
			}
			out = append(out, rr(dnsmessage.TypeSRV, &dnsmessage.SRVResource{Priority: s.Priority, Weight: s.Weight, Port: s.Port, Target: n}))
		}
	case dnsmessage.TypeTXT:
		txts, err := r.res.LookupTXT(ctx, name)
		if err != nil {
			return r.negative(ctx, name, err), false, nil
		}
		for _, t := range txts {
			out = append(out, rr(dnsmessage.TypeTXT, &dnsmessage.TXTResource{TXT: splitTXT(t)}))
		}
	case dnsmessage.TypePTR:
		a, ok := reverseAddr(name)
		if !ok {
			return dnsmessage.RCodeNotImplemented, false, nil
		}
		names, err := r.res.LookupAddr(ctx, a.String())
		if err != nil {
			return rcodeOf(err), false, nil
		}
		for _, h := range names {
			n, err := absName(h)
			if err != nil {
				return dnsmessage.RCodeServerFailure, false, nil
			}
			out = append(out, rr(dnsmessage.TypePTR, &dnsmessage.PTRResource{PTR: n}))
		}
	default:
		return dnsmessage.RCodeNotImplemented, false, nil
	}
	return dnsmessage.RCodeSuccess, false, out
}

// negative is the rcode for a failed lookup of one type: a name the host
// resolver does not find for that type may still exist (then NODATA, not
// NXDOMAIN, RFC 2308 2.2), so its addresses are looked up.
func (r *responder) negative(ctx context.Context, name string, err error) dnsmessage.RCode {
	if rc := rcodeOf(err); rc != dnsmessage.RCodeNameError {
		return rc
	}
	if _, err := r.res.LookupNetIP(ctx, "ip", name); err == nil {
		return dnsmessage.RCodeSuccess
	}
	return dnsmessage.RCodeNameError
}

// rcodeOf maps a host resolver error: not found is NXDOMAIN, anything else
// (a timeout, no name server) SERVFAIL.
func rcodeOf(err error) dnsmessage.RCode {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return dnsmessage.RCodeNameError
	}
	return dnsmessage.RCodeServerFailure
}

// absName makes a name from the host resolver absolute.
func absName(s string) (dnsmessage.Name, error) {
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return dnsmessage.NewName(s)
}

// splitTXT cuts a TXT record into character-strings of at most 255 octets
// (RFC 1035 3.3.14); the host resolver joins them.
func splitTXT(t string) []string {
	if t == "" {
		return []string{""}
	}
	var out []string
	for len(t) > 255 {
		out = append(out, t[:255])
		t = t[255:]
	}
	return append(out, t)
}

// reverseAddr reads an IPv4 reverse name, d.c.b.a.in-addr.arpa (RFC 1035
// 3.5), lower case without the trailing dot.
func reverseAddr(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	var a [4]byte
	for i, p := range parts {
		if p == "" || len(p) > 3 || (len(p) > 1 && p[0] == '0') {
			return netip.Addr{}, false
		}
		v, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return netip.Addr{}, false
		}
		a[3-i] = byte(v)
	}
	return netip.AddrFrom4(a), true
}

// serveDNS starts the responder on UDP and TCP 53 of the DNS address.
func (d *DN) serveDNS() error {
	fa := tcpip.FullAddress{NIC: nicID, Addr: tcpAddr(d.s.dns), Port: DNSPort}
	uc, err := gonet.DialUDP(d.st, &fa, nil, ipv4.ProtocolNumber)
	if err != nil {
		return fmt.Errorf("dn: dns: %w", err)
	}
	ln, err := d.listenTCP(netip.AddrPortFrom(d.s.dns, DNSPort))
	if err != nil {
		uc.Close()
		return fmt.Errorf("dn: dns: tcp %s: %w", d.s.dns, err)
	}
	context.AfterFunc(d.ctx, func() { uc.Close(); ln.Close() })
	d.g.Go(func() { d.dnsUDP(uc) })
	d.g.Go(func() { d.dnsTCP(ln) })
	return nil
}

func (d *DN) dnsUDP(uc *gonet.UDPConn) {
	defer uc.Close()
	buf := make([]byte, 65535)
	sem := make(chan struct{}, dnsMaxPending)
	for {
		n, from, err := uc.ReadFrom(buf)
		if err != nil {
			if d.ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // overloaded: the client retries
		}
		msg := bytes.Clone(buf[:n])
		if !d.g.Go(func() {
			defer func() { <-sem }()
			if resp := d.dns.respond(d.ctx, msg, false); resp != nil {
				_, _ = uc.WriteTo(resp, from)
			}
		}) {
			return
		}
	}
}

func (d *DN) dnsTCP(ln *gonet.TCPListener) {
	defer ln.Close()
	sem := make(chan struct{}, dnsMaxTCPConns)
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed with d
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close()
			continue
		}
		if !d.g.Go(func() {
			defer func() { <-sem }()
			d.dnsConn(c)
		}) {
			c.Close()
			return
		}
	}
}

// dnsConn answers the queries of one TCP connection, each framed by a
// two-octet length (RFC 1035 4.2.2), in order, until the client closes it,
// it idles for dnsTCPIdle, or d stops.
func (d *DN) dnsConn(c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(d.ctx, func() { c.Close() })
	defer stop()
	var lenBuf [2]byte
	msg := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(time.Now().Add(dnsTCPIdle))
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg[:n]); err != nil {
			return
		}
		resp := d.dns.respond(d.ctx, msg[:n], true)
		if resp == nil {
			continue
		}
		out := make([]byte, 2+len(resp))
		binary.BigEndian.PutUint16(out, uint16(len(resp)))
		copy(out[2:], resp)
		_ = c.SetWriteDeadline(time.Now().Add(dnsTCPIdle))
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
