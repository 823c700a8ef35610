package device

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// LookupHost resolves host to IPv4 addresses as the UE ue: an A query
// (RFC 1035) from the UE's address to the DNS server of its PDU session,
// over UDP, again over TCP if the answer was truncated (RFC 7766). An IP
// literal is returned as is. Failures are *net.DNSError: IsNotFound for
// NXDOMAIN or no A record, IsTimeout when the server did not answer.
func (s *Stack) LookupHost(ctx context.Context, ue netip.Addr, host string) ([]netip.Addr, error) {
	u := s.lookup(ue)
	if u == nil {
		return nil, &net.DNSError{Err: fmt.Sprintf("device: ue %s: %v", ue, ErrUnknownUE), Name: host, UnwrapErr: ErrUnknownUE}
	}
	return s.resolve(ctx, u, host)
}

// resolve is LookupHost for a UE already found.
func (s *Stack) resolve(ctx context.Context, u *ue, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if !ip.Is4() {
			return nil, fmt.Errorf("device: %s: UEs have IPv4 only: %w", host, syscall.EAFNOSUPPORT)
		}
		return []netip.Addr{ip}, nil
	}
	name, err := dnsName(host)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: host, IsNotFound: true}
	}
	if !u.dns.IsValid() {
		return nil, &net.DNSError{Err: "no DNS server in the UE's PDU session", Name: host}
	}
	server := netip.AddrPortFrom(u.dns, 53).String()
	q := dnsmessage.Question{Name: name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}
	var last error
	for range s.cfg.DNSAttempts {
		addrs, err := s.exchange(ctx, u, q)
		if err == nil {
			return addrs, nil
		}
		last = err
		var de *dnsError
		if errors.As(err, &de) && !de.temporary || ctx.Err() != nil {
			break // a definite answer, or the caller gave up
		}
	}
	return nil, toDNSError(last, host, server)
}

// exchange asks one question over UDP, then over TCP if truncated.
func (s *Stack) exchange(ctx context.Context, u *ue, q dnsmessage.Question) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DNSTimeout)
	defer cancel()
	id := uint16(rand.Uint32())
	query, err := buildQuery(id, q)
	if err != nil {
		return nil, err
	}
	addrs, truncated, err := s.exchangeUDP(ctx, u, id, q, query)
	if err != nil || !truncated {
		return addrs, err
	}
	return s.exchangeTCP(ctx, u, id, q, query)
}

func (s *Stack) exchangeUDP(ctx context.Context, u *ue, id uint16, q dnsmessage.Question, query []byte) ([]netip.Addr, bool, error) {
	c, err := s.dialUDP(u, netip.AddrPortFrom(u.dns, 53))
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := c.Write(query); err != nil {
		return nil, false, err
	}
	// RFC 1035 4.2.1: 512 octets at most without EDNS, which we do not
	// offer; room for a little more from a lax server.
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			return nil, false, err
		}
		addrs, truncated, err := parseAnswer(buf[:n], id, q)
		if errors.Is(err, errMismatch) {
			continue // not our answer (late, or forged): keep waiting
		}
		return addrs, truncated, err
	}
}

// exchangeTCP is RFC 1035 4.2.2: each message has a two-octet length.
func (s *Stack) exchangeTCP(ctx context.Context, u *ue, id uint16, q dnsmessage.Question, query []byte) ([]netip.Addr, error) {
	c, err := s.dialTCP(ctx, u, netip.AddrPortFrom(u.dns, 53))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	msg := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(query)), uint16(len(query)))
	if _, err := c.Write(append(msg, query...)); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, fmt.Errorf("dns over tcp: %w", err)
	}
	resp := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		return nil, fmt.Errorf("dns over tcp: %w", err)
	}
	addrs, _, err := parseAnswer(resp, id, q)
	return addrs, err
}

// buildQuery is a standard query with recursion desired (RFC 1035 4.1.1).
func buildQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 64), dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, fmt.Errorf("dns query %s: %w", q.Name, err)
	}
	return b.Finish()
}

// errMismatch: a message that is not the answer to our question.
var errMismatch = errors.New("dns: answer does not match the query")

// dnsError is a definite failure from the server's answer.
type dnsError struct {
	msg                 string
	notFound, temporary bool
}

func (e *dnsError) Error() string { return e.msg }

// parseAnswer reads a response to query id/q: the A addresses of q.Name,
// following CNAMEs within the answer section, and whether it was truncated.
func parseAnswer(msg []byte, id uint16, q dnsmessage.Question) ([]netip.Addr, bool, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, false, fmt.Errorf("dns: bad answer: %w", err)
	}
	if h.ID != id || !h.Response {
		return nil, false, errMismatch
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return nil, false, fmt.Errorf("dns: bad answer: %w", err)
	}
	if len(qs) != 1 || qs[0].Type != q.Type || qs[0].Class != q.Class || !strings.EqualFold(qs[0].Name.String(), q.Name.String()) {
		return nil, false, errMismatch
	}
	if h.Truncated {
		return nil, true, nil
	}
	switch h.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, false, &dnsError{msg: "no such host", notFound: true}
	case dnsmessage.RCodeServerFailure:
		return nil, false, &dnsError{msg: "server failure", temporary: true}
	default:
		return nil, false, &dnsError{msg: "server answered " + h.RCode.String()}
	}
	var (
		cnames = map[string]string{}
		as     = map[string][]netip.Addr{}
	)
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("dns: bad answer: %w", err)
		}
		owner := strings.ToLower(rh.Name.String())
		switch {
		case rh.Class != dnsmessage.ClassINET:
			err = p.SkipAnswer()
		case rh.Type == dnsmessage.TypeA:
			var r dnsmessage.AResource
			if r, err = p.AResource(); err == nil {
				as[owner] = append(as[owner], netip.AddrFrom4(r.A))
			}
		case rh.Type == dnsmessage.TypeCNAME:
			var r dnsmessage.CNAMEResource
			if r, err = p.CNAMEResource(); err == nil {
				cnames[owner] = strings.ToLower(r.CNAME.String())
			}
		default:
			err = p.SkipAnswer()
		}
		if err != nil {
			return nil, false, fmt.Errorf("dns: bad answer: %w", err)
		}
	}
	name := strings.ToLower(q.Name.String())
	for range 8 { // RFC 1034 3.6.2: follow the chain, with a bound
		if a := as[name]; len(a) > 0 {
			return a, false, nil
		}
		next, ok := cnames[name]
		if !ok {
			break
		}
		name = next
	}
	return nil, false, &dnsError{msg: "no A record", notFound: true}
}

// dnsName checks a host name (RFC 1035 2.3.4: labels of 1..63 octets, 253
// in all) and makes it fully qualified.
func dnsName(host string) (dnsmessage.Name, error) {
	h := strings.TrimSuffix(host, ".")
	if h == "" || len(h) > 253 {
		return dnsmessage.Name{}, fmt.Errorf("invalid host name %q", host)
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 {
			return dnsmessage.Name{}, fmt.Errorf("invalid host name %q", host)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return dnsmessage.Name{}, fmt.Errorf("invalid host name %q", host)
			}
		}
	}
	return dnsmessage.NewName(h + ".")
}

// toDNSError makes a failure into the *net.DNSError net.Resolver gives.
func toDNSError(err error, host, server string) error {
	de := &net.DNSError{Err: err.Error(), Name: host, Server: server, UnwrapErr: err}
	var d *dnsError
	var ne net.Error
	switch {
	case errors.As(err, &d):
		de.IsNotFound, de.IsTemporary = d.notFound, d.temporary
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		de.Err, de.IsTimeout, de.IsTemporary = "i/o timeout", true, true
	}
	return de
}
