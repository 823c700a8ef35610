package beam

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

// Loopback addresses of the tests: the device with a SIM session, and a
// host without one.
const (
	deviceAddr  = "127.0.0.1"
	unknownAddr = "127.0.0.3"
)

// testNow is the timestamp of the first beam.json vector.
var testNow = time.UnixMilli(1445587157992)

// store is an in-memory subscriber store with user-plane sessions.
type store struct {
	mu       sync.Mutex
	sessions map[netip.Addr][2]string // source -> IMSI, IMEI
	sims     map[string]udr.SIM
	groups   map[string]udr.Group
}

func newStore() *store {
	return &store{sessions: map[netip.Addr][2]string{}, sims: map[string]udr.SIM{}, groups: map[string]udr.Group{}}
}

// attach provisions sim with a session at addr.
func (s *store) attach(addr string, sim udr.SIM, imei string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sim.Group == "" {
		sim.Group = udr.DefaultGroup
	}
	if sim.Status == "" {
		sim.Status = udr.StatusActive
	}
	s.sims[sim.IMSI] = sim
	s.sessions[netip.MustParseAddr(addr)] = [2]string{sim.IMSI, imei}
}

func (s *store) setBeam(group string, cfg udr.BeamConfig) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[group] = udr.Group{Name: group, Endorse: udr.DefaultEndorse(), Beam: cfg}
}

// resolver is the real StoreResolver over the store.
func (s *store) resolver() endorse.StoreResolver {
	return endorse.StoreResolver{
		Session: func(_ context.Context, src netip.Addr) (string, string, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			v, ok := s.sessions[src]
			if !ok {
				return "", "", endorse.ErrUnknownSource
			}
			return v[0], v[1], nil
		},
		SIM: func(imsi string) (udr.SIM, error) {
			s.mu.Lock()
			defer s.mu.Unlock()
			v, ok := s.sims[imsi]
			if !ok {
				return udr.SIM{}, udr.ErrNotFound
			}
			return v, nil
		},
	}
}

// Group implements endorse.Groups; the group "broken" fails.
func (s *store) Group(name string) (udr.Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "broken" {
		return udr.Group{}, errors.New("store failure")
	}
	if g, ok := s.groups[name]; ok {
		return g, nil
	}
	return udr.Group{Name: name, Endorse: udr.DefaultEndorse(), Beam: udr.BeamConfig{}}, nil
}

// countingDialer dials on loopback and counts the dials.
type countingDialer struct{ n atomic.Int64 }

func (d *countingDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.n.Add(1)
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// dialFrom returns a dialer whose connections come from the loopback
// address src.
func dialFrom(src string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting
// it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "beam test destination"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// sim1 is the SIM of most tests, with the identity of beam.json case 1.
var sim1 = udr.SIM{IMSI: "295000012345678", MSISDN: "819012345678", SIMID: "8981100001234567890"}

const imei1 = "860000012345678"
