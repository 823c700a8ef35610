package dn

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// CA files, in <data-dir>/ca.
const (
	CADir      = "ca"
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// Validity periods: the CA ten years; a server certificate 397 days (the
// longest CA/Browser Forum BR 6.3.2 admits since 2020, so no client
// refuses it for its lifetime), issued again a day before it ends.
const (
	caValidity     = 10 * 365 * 24 * time.Hour
	serverValidity = 397 * 24 * time.Hour
	renewBefore    = 24 * time.Hour
	backdate       = time.Hour // clock skew between simulator and device
)

// CA is simgate's certificate authority: an ECDSA P-256 key and a
// self-signed certificate kept in <data-dir>/ca, which issues the
// certificates of in-network HTTPS services. Device code trusts it by
// adding PEM to its trust store.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
	now  func() time.Time
}

// LoadOrCreateCA loads the CA in <dataDir>/ca (ca.pem, ca-key.pem), or
// creates it there, with the key file mode 0600, if the directory does not
// exist. The directory appears whole: concurrent creators agree on one CA.
func LoadOrCreateCA(dataDir string) (*CA, error) {
	dir := filepath.Join(dataDir, CADir)
	ca, err := loadCA(dir)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return ca, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("dn: ca: %w", err)
	}
	if err := createCA(dataDir, dir); err != nil {
		return nil, err
	}
	return loadCA(dir)
}

// loadCA reads and checks the CA in dir; an error wrapping os.ErrNotExist
// if dir does not exist.
func loadCA(dir string) (*CA, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("dn: ca: %w", err)
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, fmt.Errorf("dn: ca: incomplete CA directory: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("dn: ca: incomplete CA directory: %w", err)
	}
	return parseCA(certPEM, keyPEM)
}

// parseCA checks that certPEM is a CA certificate and keyPEM its key.
func parseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("dn: ca: " + CACertFile + ": no CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dn: ca: %s: %w", CACertFile, err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("dn: ca: " + CACertFile + ": not a CA certificate (basicConstraints cA, keyCertSign)")
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("dn: ca: " + CAKeyFile + ": no PEM block")
	}
	var key any
	switch kb.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	default:
		err = fmt.Errorf("PEM block %q is not a private key", kb.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("dn: ca: %s: %w", CAKeyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dn: ca: %s: %T cannot sign", CAKeyFile, key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("dn: ca: " + CAKeyFile + " is not the key of " + CACertFile)
	}
	return &CA{cert: cert, key: signer, pem: pem.EncodeToMemory(cb), now: time.Now}, nil
}

// createCA makes a new CA in a temporary directory beside dir and renames
// it to dir; if dir appeared meanwhile, that one stands.
func createCA(parent, dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("dn: ca: key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("dn: ca: %w", err)
	}
	ski := sha1.Sum(spki) // RFC 5280 4.2.1.2 method (1), over the whole SPKI
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"simgate"}, CommonName: "simgate CA " + hex.EncodeToString(ski[:4])},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs only end-entity certificates
		SubjectKeyId:          ski[:],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("dn: ca: certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("dn: ca: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".ca-*") // mode 0700
	if err != nil {
		return fmt.Errorf("dn: ca: %w", err)
	}
	defer os.RemoveAll(tmp) // after a successful rename, nothing is left
	if err := writeSync(filepath.Join(tmp, CAKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	if err := writeSync(filepath.Join(tmp, CACertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // like any directory; the key file stays 0600
		return fmt.Errorf("dn: ca: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return nil // another process made it first (or it is damaged: loadCA says how)
		}
		return fmt.Errorf("dn: ca: %w", err)
	}
	if d, err := os.Open(parent); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

func writeSync(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("dn: ca: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dn: ca: %s: %w", path, err)
	}
	return nil
}

// serial is a random positive 127-bit serial number (RFC 5280 4.1.2.2: at
// most 20 octets; CA/B BR 7.1: at least 64 random bits).
func serial() *big.Int {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	b[0] &= 0x7f
	b[0] |= 0x40
	return new(big.Int).SetBytes(b)
}

// PEM returns the CA certificate in PEM, for device trust stores.
func (c *CA) PEM() []byte { return bytes.Clone(c.pem) }

// Certificate returns the CA certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// Pool returns a pool holding only the CA certificate, for clients.
func (c *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Issue returns a new server certificate, with a new ECDSA P-256 key, for
// names: DNS names (subjectAltName dNSName) and IP addresses (iPAddress).
func (c *CA) Issue(names ...string) (tls.Certificate, error) {
	if len(names) == 0 {
		return tls.Certificate{}, errors.New("dn: ca: issue: no names")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("dn: ca: issue: %w", err)
	}
	now := c.now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"simgate"}, CommonName: names[0]},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(serverValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			continue
		}
		dn := strings.TrimSuffix(lowerASCII(n), ".")
		if !validName(strings.TrimPrefix(dn, "*.")) {
			return tls.Certificate{}, fmt.Errorf("dn: ca: issue: %q is not a DNS name or IP address", n)
		}
		tmpl.DNSNames = append(tmpl.DNSNames, dn)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("dn: ca: issue: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("dn: ca: issue: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerTLS returns a server configuration (TLS 1.2 and up) presenting a
// certificate for names issued by c, issued at the first handshake and
// again a day before it expires. An error issuing it fails the handshake.
func (c *CA) ServerTLS(names ...string) *tls.Config {
	names = append([]string(nil), names...)
	var (
		mu   sync.Mutex
		cert *tls.Certificate
	)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			mu.Lock()
			defer mu.Unlock()
			if cert == nil || c.now().After(cert.Leaf.NotAfter.Add(-renewBefore)) {
				crt, err := c.Issue(names...)
				if err != nil {
					return nil, err
				}
				cert = &crt
			}
			return cert, nil
		},
	}
}
