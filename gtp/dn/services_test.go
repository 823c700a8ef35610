package dn

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
)

// remoteEcho is a handler that answers with the request's remote address
// and the TLS server name.
var remoteEcho = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	sni := ""
	if r.TLS != nil {
		sni = r.TLS.ServerName
	}
	fmt.Fprintf(w, "%s %s %s", r.RemoteAddr, r.Host, sni)
})

// connEcho is a ConnServer that writes the connection's remote address.
type connEcho struct{}

func (connEcho) ServeConn(_ context.Context, c net.Conn) {
	fmt.Fprintf(c, "%s\n", c.RemoteAddr())
}

// TestServices: the device reaches Endorse (HTTP and HTTPS with the CA) and
// Beam by their names through the in-network DNS, and every service sees
// the device's address.
func TestServices(t *testing.T) {
	ca, err := LoadOrCreateCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := startDN(t, testConfig())
	extra := netip.MustParseAddrPort("100.127.9.9:1883")
	err = d.Serve(context.Background(), Services{
		Endorse:    remoteEcho,
		EndorseTLS: ca.ServerTLS(EndorseName, DefaultEndorseAddr),
		BeamHTTP:   remoteEcho,
		BeamSite:   remoteEcho,
		BeamTCP:    connEcho{},
		TCP:        map[netip.AddrPort]ConnServer{extra: connEcho{}},
	})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	u := newUE(t, d, ueAddr)
	client := u.httpClient()
	client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: ca.Pool()}

	for _, url := range []string{
		"http://endorse.soracom.io/",
		"https://endorse.soracom.io/",
		"https://" + DefaultEndorseAddr + "/",
		"http://beam.soracom.io:8888/x",
		"http://beam.soracom.io:18080/",
		"http://beam.soracom.io/",
	} {
		resp, err := client.Get(url)
		if err != nil {
			t.Errorf("GET %s: %v", url, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		remote, _, _ := strings.Cut(string(body), " ")
		ap, err := netip.ParseAddrPort(remote)
		if err != nil || ap.Addr() != ueAddr {
			t.Errorf("GET %s: handler saw remote %q, want %s", url, remote, ueAddr)
		}
		if strings.HasPrefix(url, "https://endorse") && !strings.HasSuffix(string(body), " "+EndorseName) {
			t.Errorf("GET %s: %q, want SNI %s", url, body, EndorseName)
		}
	}

	// A client that does not trust the simgate CA refuses the certificate.
	plain := u.httpClient()
	if _, err := plain.Get("https://endorse.soracom.io/"); err == nil {
		t.Error("HTTPS without the CA: no error")
	} else if ue := (x509.UnknownAuthorityError{}); !errors.As(err, &ue) {
		t.Errorf("HTTPS without the CA: %v, want unknown authority", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, to := range []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr(DefaultBeamAddr), BeamTCPPort), extra} {
		c, err := u.dialTCP(ctx, to)
		if err != nil {
			t.Fatalf("dial %s: %v", to, err)
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", to, err)
		}
		if ap, err := netip.ParseAddrPort(strings.TrimSpace(line)); err != nil || ap.Addr() != ueAddr {
			t.Errorf("%s: server saw %q, want %s", to, line, ueAddr)
		}
	}

	// The extra address answers pings and refuses other ports, like any
	// service address.
	if err := u.ping(extra.Addr(), 5*time.Second); err != nil {
		t.Errorf("ping %s: %v", extra.Addr(), err)
	}
	if _, err := u.dialTCP(ctx, netip.AddrPortFrom(extra.Addr(), 22)); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("dial %s:22: %v, want refused", extra.Addr(), err)
	}
}

// TestServeStops: services stop with Serve's context; the port is then
// refused and can be served again.
func TestServeStops(t *testing.T) {
	d := startDN(t, testConfig())
	u := newUE(t, d, ueAddr)
	ctx, cancel := context.WithCancel(context.Background())
	if err := d.Serve(ctx, Services{Endorse: remoteEcho}); err != nil {
		t.Fatal(err)
	}
	client := u.httpClient()
	get := func() error {
		client.CloseIdleConnections()
		resp, err := client.Get("http://" + DefaultEndorseAddr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	cancel()
	eventually(t, "service stopped", func() bool { return get() != nil })
	if err := d.Serve(context.Background(), Services{Endorse: remoteEcho}); err != nil {
		t.Fatalf("serve again: %v", err)
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
}

// TestServeErrors: bad service sets are refused before anything starts.
func TestServeErrors(t *testing.T) {
	d := startDN(t, testConfig())
	tests := []struct {
		name string
		svc  Services
		want string
	}{
		{"tls without handler", Services{EndorseTLS: &tls.Config{}}, "EndorseTLS without"},
		{"on the alias", Services{HTTP: map[netip.AddrPort]http.Handler{netip.MustParseAddrPort(DefaultHostAlias + ":80"): remoteEcho}}, "host alias"},
		{"on the DNS port", Services{TCP: map[netip.AddrPort]ConnServer{netip.MustParseAddrPort(DefaultDNSAddr + ":53"): connEcho{}}}, "DNS responder"},
		{"twice", Services{Endorse: remoteEcho, HTTP: map[netip.AddrPort]http.Handler{netip.MustParseAddrPort(DefaultEndorseAddr + ":80"): remoteEcho}}, "given twice"},
		{"loopback", Services{HTTP: map[netip.AddrPort]http.Handler{netip.MustParseAddrPort("127.0.0.1:80"): remoteEcho}}, "not a unicast"},
		{"port 0", Services{TCP: map[netip.AddrPort]ConnServer{netip.MustParseAddrPort("100.127.3.3:0"): connEcho{}}}, "not a unicast"},
	}
	for _, tc := range tests {
		if err := d.Serve(context.Background(), tc.svc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A port already served.
	if err := d.Serve(context.Background(), Services{Endorse: remoteEcho}); err != nil {
		t.Fatal(err)
	}
	if err := d.Serve(context.Background(), Services{Endorse: remoteEcho}); err == nil {
		t.Error("serving port 80 twice: no error")
	}
}

// TestEndorseToken: the real token handler on the stack, its resolver
// keyed by the source address as the PFCP session table would be: the SIM
// behind the device's session gets a token naming it; a device no SIM
// session owns gets 403.
func TestEndorseToken(t *testing.T) {
	dir := t.TempDir()
	ecfg := endorse.DefaultConfig()
	ecfg.Algorithm = "ES256"
	keys, err := endorse.OpenKeys(dir, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	is, err := endorse.NewIssuer(keys, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	const imsi, imei = "295050913244223", "867698047437580"
	res := endorse.StoreResolver{
		Session: func(_ context.Context, src netip.Addr) (string, string, error) {
			if src == ueAddr {
				return imsi, imei, nil
			}
			return "", "", endorse.ErrUnknownSource
		},
		SIM: func(string) (udr.SIM, error) {
			return udr.SIM{IMSI: imsi, Group: "g", Status: udr.StatusActive}, nil
		},
	}
	groups := endorse.GroupsFunc(func(name string) (udr.Group, error) {
		return udr.Group{Name: name, Endorse: udr.DefaultEndorse()}, nil
	})
	ca, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := startDN(t, testConfig())
	err = d.Serve(context.Background(), Services{
		Endorse:    endorse.NewTokenHandler(is, res, groups, slog.New(slog.DiscardHandler)),
		EndorseTLS: ca.ServerTLS(EndorseName),
	})
	if err != nil {
		t.Fatal(err)
	}
	ues := newUEs(t, d, ueAddr, netip.MustParseAddr("100.64.0.6"))
	for i, u := range ues {
		client := u.httpClient()
		client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: ca.Pool()}
		resp, err := client.Get("https://endorse.soracom.io/")
		if err != nil {
			t.Fatalf("device %s: %v", u.addr, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if i == 1 {
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("device %s with no session: %d %s, want 403", u.addr, resp.StatusCode, body)
			}
			continue
		}
		var out struct{ Token string }
		if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("device %s: %d %s", u.addr, resp.StatusCode, body)
		}
		parts := strings.Split(out.Token, ".")
		if len(parts) != 3 {
			t.Fatalf("token %q", out.Token)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Claim struct{ IMSI, IMEI string } `json:"soracom-endorse-claim"`
		}
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if claims.Claim.IMSI != imsi || claims.Claim.IMEI != imei {
			t.Errorf("token claims %s, want imsi %s imei %s", payload, imsi, imei)
		}
	}
}
