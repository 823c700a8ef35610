package ran

// End-to-end tests of the user plane: UEs attach to the real core, and
// fetch Endorse tokens through GTP-U from the issuer in the data network
// (gtp/dn), resolving endorse.soracom.io through its DNS.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/endorse"
	"github.com/simgate/simgate/endorse/verify"
	"github.com/simgate/simgate/gtp/dn"
	"github.com/simgate/simgate/gtp/gtpu"
	"github.com/simgate/simgate/gtp/upf"
)

// network is the core with a user plane: the UPF's data path carries its
// sessions between N3 and a data network that serves the Endorse issuer,
// and the host key endpoint serves the issuer's JWK Set.
type network struct {
	*core
	n3      *gtpu.Conn
	dn      *dn.DN
	keys    *endorse.Keys
	issuer  *endorse.Issuer
	jwksURL string
}

// startNetwork starts a core and its user plane.
func startNetwork(t testing.TB) *network {
	t.Helper()
	c := startCore(t, t.TempDir())
	n := &network{core: c}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ecfg := endorse.DefaultConfig()
	var err error
	if n.keys, err = endorse.OpenKeys(c.dir, ecfg); err != nil {
		t.Fatal(err)
	}
	is, err := endorse.NewIssuer(n.keys, ecfg)
	if err != nil {
		t.Fatal(err)
	}
	n.issuer = is
	res := endorse.StoreResolver{Session: c.upf.Sessions().EndorseSession, SIM: c.store.GetSIM}
	token := endorse.NewTokenHandler(is, res, endorse.GroupsFunc(c.store.GetGroup), nil)
	dcfg := dn.DefaultConfig()
	dcfg.NAT.Enabled = false
	if n.dn, err = dn.Start(ctx, dcfg); err != nil {
		t.Fatal(err)
	}
	if err := n.dn.Serve(ctx, dn.Services{Endorse: token}); err != nil {
		t.Fatal(err)
	}
	n.startDataPath(t, ctx)
	keys := httptest.NewServer(endorse.NewKeysHandler(n.keys, ecfg))
	t.Cleanup(keys.Close)
	n.jwksURL = keys.URL + endorse.JWKSPath
	return n
}

// startDataPath runs the UPF's data path (gtp/upf) between an N3 socket
// and the data network.
func (n *network) startDataPath(t testing.TB, ctx context.Context) {
	t.Helper()
	conn, err := gtpu.Listen("127.0.0.1:0", gtpu.Config{})
	if err != nil {
		t.Fatal(err)
	}
	n.n3 = conn
	dp := upf.NewDataPath(n.upf, conn, n.dn)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := dp.Serve(ctx); err != nil {
			t.Errorf("data path: %v", err)
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
}

// upfPort is the data path's GTP-U port, where the gNBs send.
func (n *network) upfPort() uint16 { return n.n3.LocalAddr().Port() }

// randomN3 is a loopback address of its own for the gNBs' GTP-U socket,
// which binds port 2152: tests running at once do not collide.
func randomN3() string {
	return netip.AddrFrom4([4]byte{127, byte(1 + rand.IntN(250)), byte(rand.IntN(256)), byte(2 + rand.IntN(250))}).String()
}

// tokenConfig is a token run of ues UEs against n.
func tokenConfig(t testing.TB, n *network, ues int) (Config, Options) {
	cfg := e2eConfig(t, n.core, ues)
	cfg.Token = true
	cfg.JWKSURL = n.jwksURL
	cfg.N3 = randomN3()
	return cfg, Options{UPFPort: n.upfPort()}
}

// TestE2ETokens: 100 UEs attach and each fetches a token through GTP-U;
// every token verifies (endorse/verify, and PyJWT) and names the UE's own
// IMSI and IMEI.
func TestE2ETokens(t *testing.T) {
	n := startNetwork(t)
	const ues = 100
	f := n.provision("001010000001001", ues)
	cfg, opt := tokenConfig(t, n, ues)
	cfg.SIMFile = writeSIMFile(t, f)
	var results []Result
	var n3 struct{ up, down uint64 }
	r, rep := runE2E(t, cfg, opt, func(r *Runner, _ Report) {
		results = r.Results()
		s := r.N3Stats()
		n3.up, n3.down = s.Uplink, s.Downlink
	})
	if rep.Registered != ues || rep.Sessions != ues || rep.Tokens != ues || len(rep.Failures) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if l := rep.LatencyMS[LatencyToken]; l.P50 <= 0 || l.Max < l.P99 {
		t.Errorf("token latency %+v", l)
	}
	// The tokens went through the tunnels both ways.
	if n3.up < 3*ues || n3.down < 3*ues {
		t.Errorf("N3 uplink %d, downlink %d packets for %d token fetches", n3.up, n3.down, ues)
	}
	ourV, err := verify.New(verify.WithJWKS(n.jwksURL))
	if err != nil {
		t.Fatal(err)
	}
	var jwts []string
	for _, res := range results {
		tr := res.Token
		if res.Failure != "" || tr == nil || tr.Failure != "" {
			t.Errorf("%s: failure %q token %+v", res.IMSI, res.Failure, tr)
			continue
		}
		// Independently of the runner: the token is the UE's own.
		c, err := ourV.VerifyExpect(context.Background(), tr.JWT, verify.Expect{IMSI: res.IMSI, IMEI: res.IMEI})
		if err != nil {
			t.Errorf("%s: %v", res.IMSI, err)
			continue
		}
		if c.Endorse.IMSI != res.IMSI || c.Endorse.IMEI != res.IMEI || len(res.IMEI) != 15 {
			t.Errorf("%s: claims %+v, IMEI %s", res.IMSI, c.Endorse, res.IMEI)
		}
		jwts = append(jwts, tr.JWT)
	}
	if r.N3Stats().Tunnels != 0 {
		t.Errorf("tunnels left after the run: %d", r.N3Stats().Tunnels)
	}
	checkPyJWT(t, n, jwts, results)
}

// pyCheck verifies each token of a file (one a line) against a JWK Set with
// PyJWT and prints the IMSI and IMEI it names.
const pyCheck = `
import json, sys, jwt
ks = jwt.PyJWKSet.from_json(open(sys.argv[1]).read())
keys = {k.key_id: k.key for k in ks.keys}
for line in open(sys.argv[2]):
    tok = line.strip()
    hdr = jwt.get_unverified_header(tok)
    c = jwt.decode(tok, keys[hdr["kid"]], algorithms=[hdr["alg"]], audience="soracom-endorse-audience",
                   issuer="https://soracom.io", options={"require": ["exp", "nbf", "iat", "sub", "jti"]})
    e = c["soracom-endorse-claim"]
    print(e["imsi"], e["imei"])
`

func checkPyJWT(t *testing.T, n *network, jwts []string, results []Result) {
	t.Helper()
	if err := exec.Command("/usr/bin/python3", "-c", "import jwt, cryptography").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3-jwt (PyJWT) is required in CI: %v", err)
		}
		t.Skipf("python3-jwt (PyJWT) not available (%v); skipping", err)
	}
	dir := t.TempDir()
	jwks, toks := filepath.Join(dir, "jwks.json"), filepath.Join(dir, "tokens")
	if err := os.WriteFile(jwks, n.keys.JWKS(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(toks, []byte(strings.Join(jwts, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("/usr/bin/python3", "-c", pyCheck, jwks, toks).CombinedOutput()
	if err != nil {
		t.Fatalf("PyJWT rejects a token: %v\n%s", err, out)
	}
	want := map[string]string{}
	for _, res := range results {
		want[res.IMSI] = res.IMEI
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		imsi, imei, _ := strings.Cut(sc.Text(), " ")
		if want[imsi] != imei {
			t.Errorf("PyJWT: token names %s/%s, provisioned IMEI %q", imsi, imei, want[imsi])
		}
		lines++
	}
	if lines != len(jwts) {
		t.Errorf("PyJWT checked %d tokens of %d", lines, len(jwts))
	}
}

// TestE2ETokenFailures: failures are reported by reason, and a UE whose
// session was released gets nothing.
func TestE2ETokenFailures(t *testing.T) {
	n := startNetwork(t)
	f := n.provision("001010000002001", 2)

	t.Run("wrong keys", func(t *testing.T) {
		// A JWK Set without the issuer's key: every token fails to verify.
		other, err := endorse.OpenKeys(t.TempDir(), endorse.DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(endorse.NewKeysHandler(other, endorse.DefaultConfig()))
		defer srv.Close()
		cfg, opt := tokenConfig(t, n, 2)
		cfg.SIMFile, cfg.JWKSURL = writeSIMFile(t, f), srv.URL+endorse.JWKSPath
		_, rep := runE2E(t, cfg, opt, nil)
		if rep.Tokens != 0 || rep.Failures["token-verify"] != 2 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("endorse disabled", func(t *testing.T) {
		off := udr.DefaultEndorse()
		off.Enabled = false
		if err := n.store.PutGroup(udr.Group{Name: "off", Endorse: off}); err != nil {
			t.Fatal(err)
		}
		sims := n.provision("001010000002101", 2, func(s *udr.SIM) { s.Group = "off" })
		cfg, opt := tokenConfig(t, n, 2)
		cfg.SIMFile = writeSIMFile(t, sims)
		_, rep := runE2E(t, cfg, opt, nil)
		if rep.Sessions != 2 || rep.Tokens != 0 || rep.Failures["token-http-403"] != 2 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("refused", func(t *testing.T) {
		cfg, opt := tokenConfig(t, n, 2)
		cfg.SIMFile, cfg.TokenURL = writeSIMFile(t, f), "http://beam.soracom.io:8888/"
		_, rep := runE2E(t, cfg, opt, nil)
		// Beam is not served here: its port is refused.
		if rep.Tokens != 0 || rep.Failures["token-refused"] != 2 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("unknown name", func(t *testing.T) {
		cfg, opt := tokenConfig(t, n, 2)
		cfg.SIMFile, cfg.TokenURL = writeSIMFile(t, f), "http://nowhere.invalid/"
		_, rep := runE2E(t, cfg, opt, nil)
		if rep.Tokens != 0 || rep.Failures["token-dns"] != 2 {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("released session", func(t *testing.T) {
		cfg, opt := tokenConfig(t, n, 1)
		cfg.SIMFile = writeSIMFile(t, f)
		// A UE without its N1 connection deregisters by a new Initial UE
		// Message; it need not wait long for the answer here.
		cfg.Timeout = 3 * time.Second
		runE2E(t, cfg, opt, func(r *Runner, rep Report) {
			if rep.Tokens != 1 {
				t.Fatalf("report %+v", rep)
			}
			s := r.ues[0]
			gu := s.gu.Load()
			se, _ := gu.Session(sessionPSI)
			client := r.up.stack.HTTPClient(se.UEAddr)
			// The radio connection goes: the AMF releases the UE context and
			// with it the session's resources at the gNB.
			if err := gu.RequestRelease(); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, func() bool { return gu.Released() }, "context release")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, cfg.TokenURL, nil)
			resp, err := client.Do(req)
			if err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				t.Fatalf("released UE got %s: %s", resp.Status, body)
			}
			if got := netFailure(err); got != "token-no-session" {
				t.Errorf("released UE: %v (%s)", err, got)
			}
			// And packets the UE's address still sends go nowhere: the
			// gNB has no tunnel for it.
			if r.N3Stats().Tunnels != 0 {
				t.Errorf("tunnels %d after release", r.N3Stats().Tunnels)
			}
		})
	})
}

func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestE2ESOCKS: a hand-written SOCKS5 client (RFC 1928, RFC 1929) speaks
// as a UE by its IMSI and gets that SIM's token from endorse.soracom.io.
func TestE2ESOCKS(t *testing.T) {
	n := startNetwork(t)
	f := n.provision("001010000003001", 2)
	cfg, opt := tokenConfig(t, n, 2)
	cfg.SIMFile, cfg.Token = writeSIMFile(t, f), false
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.SOCKS = ln.Addr().String()
	ln.Close()
	v, err := verify.New(verify.WithJWKS(n.jwksURL))
	if err != nil {
		t.Fatal(err)
	}
	runE2E(t, cfg, opt, func(r *Runner, rep Report) {
		if rep.Sessions != 2 {
			t.Fatalf("report %+v", rep)
		}
		for _, res := range r.Results() {
			tok, err := socksToken(cfg.SOCKS, res.IMSI, "endorse.soracom.io", 80)
			if err != nil {
				t.Errorf("%s: %v", res.IMSI, err)
				continue
			}
			if _, err := v.VerifyExpect(context.Background(), tok, verify.Expect{IMSI: res.IMSI, IMEI: res.IMEI}); err != nil {
				t.Errorf("%s: %v", res.IMSI, err)
			}
		}
		// An IMSI with no UE fails authentication (RFC 1929 status != 0).
		if _, err := socksToken(cfg.SOCKS, "001019999999999", "endorse.soracom.io", 80); err == nil || !strings.Contains(err.Error(), "authentication") {
			t.Errorf("unknown IMSI: %v", err)
		}
	})
	// After the run the proxy is gone.
	if c, err := net.DialTimeout("tcp", cfg.SOCKS, time.Second); err == nil {
		c.Close()
		t.Error("SOCKS proxy still listening after the run")
	}
}

// socksToken connects through the SOCKS5 proxy as imsi to host:port by
// name (ATYP 3, resolved by the UE) and GETs / over HTTP/1.1.
func socksToken(proxy, imsi, host string, port uint16) (string, error) {
	c, err := net.DialTimeout("tcp", proxy, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	// RFC 1928 3: version 5, one method: username/password (2).
	if _, err := c.Write([]byte{5, 1, 2}); err != nil {
		return "", err
	}
	sel := make([]byte, 2)
	if _, err := io.ReadFull(br, sel); err != nil || sel[0] != 5 || sel[1] != 2 {
		return "", fmt.Errorf("method selection % x: %v", sel, err)
	}
	// RFC 1929 2: version 1, user name, password.
	auth := append([]byte{1, byte(len(imsi))}, imsi...)
	auth = append(auth, 1, 'x')
	if _, err := c.Write(auth); err != nil {
		return "", err
	}
	st := make([]byte, 2)
	if _, err := io.ReadFull(br, st); err != nil {
		return "", err
	}
	if st[1] != 0 {
		return "", fmt.Errorf("authentication failed (status %d)", st[1])
	}
	// RFC 1928 4: CONNECT to a domain name.
	req := append([]byte{5, 1, 0, 3, byte(len(host))}, host...)
	req = binary.BigEndian.AppendUint16(req, port)
	if _, err := c.Write(req); err != nil {
		return "", err
	}
	rep := make([]byte, 10) // an IPv4 bound address
	if _, err := io.ReadFull(br, rep); err != nil {
		return "", err
	}
	if rep[1] != 0 {
		return "", fmt.Errorf("CONNECT reply %d", rep[1])
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s", resp.Status)
	}
	var v struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", err
	}
	if v.Token == "" {
		return "", errors.New("no token in the answer")
	}
	return v.Token, nil
}
