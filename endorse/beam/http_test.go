package beam

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/simgate/simgate/core/udr"
)

// seen is one request as a destination received it.
type seen struct {
	method, path, rawQuery, host, body string
	header                             http.Header
}

// destServer is an HTTP destination on loopback that records requests and
// answers 201 with a header and a body naming the path.
type destServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func newDest(t *testing.T, tlsOn bool) *destServer {
	d := &destServer{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d.mu.Lock()
		d.reqs = append(d.reqs, seen{r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Host, string(body), r.Header.Clone()})
		d.mu.Unlock()
		w.Header().Set("X-Destination", "yes")
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, "hello from "+r.URL.Path)
	})
	if tlsOn {
		d.Server = httptest.NewTLSServer(h)
	} else {
		d.Server = httptest.NewServer(h)
	}
	t.Cleanup(d.Close)
	return d
}

func (d *destServer) take() []seen {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.reqs
	d.reqs = nil
	return r
}

// beamServer serves an HTTP entry point on loopback.
func beamServer(t *testing.T, o Options) (*HTTPEntry, *httptest.Server) {
	t.Helper()
	h, err := NewHTTPEntry(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.CloseIdleConnections() })
	return h, srv
}

// clientFrom is an HTTP client whose connections come from src.
func clientFrom(t *testing.T, src string) *http.Client {
	tr := &http.Transport{DialContext: dialFrom(src).DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func TestHTTPEntry(t *testing.T) {
	st := newStore()
	st.attach(deviceAddr, sim1, imei1)
	dest := newDest(t, false)
	dests := newDest(t, true)
	pool := dests.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	dialer := &countingDialer{}
	_, srv := beamServer(t, Options{
		Resolver: st.resolver(), Groups: st, Dial: dialer.Dial, Now: func() time.Time { return testNow },
		TLSConfig: &tls.Config{RootCAs: pool},
	})
	ts := strconv.FormatInt(testNow.UnixMilli(), 10)
	allOn := func(d string) udr.BeamEntry {
		return udr.BeamEntry{Enabled: true, Destination: d, AddSubscriberHeader: true, AddEquipmentHeader: true,
			AddMsisdnHeader: true, AddSimIDHeader: true, AddSignature: true, PSK: "topsecret"}
	}
	const ep = HTTPEntryPoint

	tests := []struct {
		name       string
		group      string // group of the SIM
		cfg        udr.BeamConfig
		from       string
		method     string
		target     string // path and query at the entry point
		body       string
		reqHeader  http.Header
		wantStatus int
		wantCode   string // error code, "" when forwarded
		check      func(t *testing.T, s seen)
	}{
		{
			name: "tagged and signed, forged fields stripped",
			cfg:  udr.BeamConfig{ep + "/": allOn(dest.URL)},
			from: deviceAddr, method: "GET", target: "/hello?x=1",
			reqHeader: http.Header{
				"X-Soracom-Imsi": {"001010000000001"}, "X-Soracom-Signature": {"00"}, "X-Soracom-Forged": {"1"},
				"x-soracom-timestamp": {"1"}, "User-Agent": {"device/1"},
			},
			wantStatus: http.StatusCreated,
			check: func(t *testing.T, s seen) {
				want := map[string]string{
					"X-Soracom-Imsi": sim1.IMSI, "X-Soracom-Imei": imei1, "X-Soracom-Msisdn": sim1.MSISDN,
					"X-Soracom-Sim-Id": sim1.SIMID, "X-Soracom-Timestamp": ts, "X-Soracom-Signature-Version": "20151001",
				}
				for k, v := range want {
					if got := s.header.Values(k); len(got) != 1 || got[0] != v {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
				// Independent check: recompute from what arrived.
				fields := map[string]string{}
				for k, v := range s.header {
					if strings.HasPrefix(strings.ToLower(k), "x-soracom-") {
						if len(v) != 1 {
							t.Errorf("%s sent %d times", k, len(v))
						}
						fields[k] = v[0]
					}
				}
				if len(fields) != 7 {
					t.Errorf("X-Soracom fields %v; want exactly Beam's seven", fields)
				}
				if got, want := s.header.Get("X-Soracom-Signature"), independentHTTP("topsecret", fields); got != want {
					t.Errorf("signature %s, recomputed %s", got, want)
				}
				if err := VerifyHTTP("topsecret", s.header); err != nil {
					t.Error(err)
				}
				if s.path != "/hello" || s.rawQuery != "x=1" || s.header.Get("User-Agent") != "device/1" {
					t.Errorf("forwarded %s ?%s UA %q", s.path, s.rawQuery, s.header.Get("User-Agent"))
				}
				if s.host != strings.TrimPrefix(dest.URL, "http://") {
					t.Errorf("Host %q, want the destination's", s.host)
				}
			},
		},
		{
			name: "path mapping: longest entry path, rest and query appended",
			cfg: udr.BeamConfig{
				ep + "/":    allOn(dest.URL + "/root"),
				ep + "/api": {Enabled: true, Destination: dest.URL + "/base?key=k", AddSubscriberHeader: true},
			},
			from: deviceAddr, method: "POST", target: "/api/v1/items%2Fx?y=2&z", body: `{"temp":21}`,
			reqHeader:  http.Header{"Content-Type": {"application/json"}},
			wantStatus: http.StatusCreated,
			check: func(t *testing.T, s seen) {
				if s.method != "POST" || s.path != "/base/v1/items%2Fx" || s.rawQuery != "key=k&y=2&z" || s.body != `{"temp":21}` {
					t.Errorf("forwarded %s %s ?%s body %q", s.method, s.path, s.rawQuery, s.body)
				}
				if s.header.Get("X-Soracom-Signature") != "" || s.header.Get("X-Soracom-Imei") != "" {
					t.Errorf("fields the entry does not enable: %v", s.header)
				}
				if s.header.Get("X-Soracom-Imsi") != sim1.IMSI || s.header.Get("X-Soracom-Timestamp") != ts {
					t.Errorf("IMSI/timestamp missing: %v", s.header)
				}
			},
		},
		{
			name: "custom headers",
			cfg: udr.BeamConfig{ep + "/": {Enabled: true, Destination: dest.URL, CustomHeaders: map[string]udr.CustomHeader{
				"Authorization":  {Action: "replace", HeaderKey: "Authorization", HeaderValue: "Bearer server-key"},
				"X-Tag":          {Action: "append", HeaderKey: "X-Tag", HeaderValue: "beam"},
				"Cookie":         {Action: "delete", HeaderKey: "Cookie"},
				"X-Soracom-Imsi": {Action: "replace", HeaderKey: "X-Soracom-Imsi", HeaderValue: "001010000000001"},
			}}},
			from: deviceAddr, method: "GET", target: "/",
			reqHeader:  http.Header{"Authorization": {"Basic device"}, "X-Tag": {"device"}, "Cookie": {"a=b"}},
			wantStatus: http.StatusCreated,
			check: func(t *testing.T, s seen) {
				if got := s.header.Get("Authorization"); got != "Bearer server-key" {
					t.Errorf("Authorization %q", got)
				}
				if got := s.header.Values("X-Tag"); strings.Join(got, ",") != "device,beam" {
					t.Errorf("X-Tag %q", got)
				}
				if _, ok := s.header["Cookie"]; ok {
					t.Errorf("Cookie not deleted")
				}
				if got := s.header.Get("X-Soracom-Imsi"); got != "" {
					t.Errorf("custom header set X-Soracom-Imsi %q", got)
				}
			},
		},
		{
			name: "https destination",
			cfg:  udr.BeamConfig{ep + "/secure": allOn(dests.URL + "/tls")},
			from: deviceAddr, method: "GET", target: "/secure/x",
			wantStatus: http.StatusCreated,
			check: func(t *testing.T, s seen) {
				if s.path != "/tls/x" || VerifyHTTP("topsecret", s.header) != nil {
					t.Errorf("forwarded %s, header %v", s.path, s.header)
				}
			},
		},
		{
			name: "Website keys do not serve the HTTP entry point",
			cfg:  udr.BeamConfig{WebsiteEntryPoint: allOn(dest.URL)},
			from: deviceAddr, method: "GET", target: "/", wantStatus: 404, wantCode: "BEM0003",
		},
		{
			name: "no entry for the path", cfg: udr.BeamConfig{ep + "/a": allOn(dest.URL)},
			from: deviceAddr, method: "GET", target: "/b", wantStatus: 404, wantCode: "BEM0003",
		},
		{
			name: "no Beam configuration", cfg: nil,
			from: deviceAddr, method: "GET", target: "/", wantStatus: 404, wantCode: "BEM0003",
		},
		{
			name: "disabled entry", cfg: udr.BeamConfig{ep + "/": {Enabled: false, Destination: dest.URL}},
			from: deviceAddr, method: "GET", target: "/", wantStatus: 404, wantCode: "BEM0003",
		},
		{
			name: "unknown source", cfg: udr.BeamConfig{ep + "/": allOn(dest.URL)},
			from: unknownAddr, method: "GET", target: "/", wantStatus: 403, wantCode: "BEM0001",
		},
		{
			name: "group store failure", group: "broken", cfg: udr.BeamConfig{ep + "/": allOn(dest.URL)},
			from: deviceAddr, method: "GET", target: "/", wantStatus: 500, wantCode: "BEM0008",
		},
		{
			name: "destination not http", cfg: udr.BeamConfig{ep + "/": {Enabled: true, Destination: "tcp://127.0.0.1:1"}},
			from: deviceAddr, method: "GET", target: "/", wantStatus: 500, wantCode: "BEM0008",
		},
		{
			name: "destination unreachable", cfg: udr.BeamConfig{ep + "/": allOn("http://" + closedPort(t))},
			from: deviceAddr, method: "GET", target: "/", wantStatus: 502, wantCode: "BEM0004",
		},
		{
			name: "dot segments", cfg: udr.BeamConfig{ep + "/": allOn(dest.URL)},
			from: deviceAddr, method: "GET", target: "/a/../../etc", wantStatus: 400, wantCode: "BEM0006",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			group := tt.group
			if group == "" {
				group = "g" + strconv.Itoa(i)
			}
			s := sim1
			s.Group = group
			st.attach(deviceAddr, s, imei1)
			st.setBeam(group, tt.cfg)
			dest.take()
			dests.take()
			before := dialer.n.Load()

			req, err := http.NewRequest(tt.method, srv.URL+tt.target, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			// Send the path as written: no client-side cleaning.
			p, q, _ := strings.Cut(tt.target, "?")
			req.URL.Opaque, req.URL.RawQuery = p, q
			for k, v := range tt.reqHeader {
				req.Header[k] = v
			}
			resp, err := clientFrom(t, tt.from).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body, tt.wantStatus)
			}
			got := append(dest.take(), dests.take()...)
			if tt.wantCode != "" {
				var e apiErr
				if err := json.Unmarshal(body, &e); err != nil || e.Code != tt.wantCode || e.Message == "" {
					t.Errorf("body %s (%v), want code %s", body, err, tt.wantCode)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q", ct)
				}
				if len(got) != 0 {
					t.Errorf("destination received %d requests on an error", len(got))
				}
				if tt.wantStatus != 502 && dialer.n.Load() != before {
					t.Errorf("a refused request dialled the destination")
				}
				return
			}
			// The destination's answer is relayed unchanged.
			if resp.Header.Get("X-Destination") != "yes" || !strings.HasPrefix(string(body), "hello from ") {
				t.Errorf("answer not relayed: %v %q", resp.Header, body)
			}
			if len(got) != 1 {
				t.Fatalf("destination received %d requests, want 1", len(got))
			}
			tt.check(t, got[0])
		})
	}
}

func TestHTTPEntryInactiveSIM(t *testing.T) {
	st := newStore()
	s := sim1
	s.Status = udr.StatusInactive
	st.attach(deviceAddr, s, imei1)
	dest := newDest(t, false)
	st.setBeam(udr.DefaultGroup, udr.BeamConfig{HTTPEntryPoint + "/": {Enabled: true, Destination: dest.URL}})
	_, srv := beamServer(t, Options{Resolver: st.resolver(), Groups: st})
	resp, err := clientFrom(t, deviceAddr).Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || len(dest.take()) != 0 {
		t.Fatalf("status %d; want 403 and nothing forwarded", resp.StatusCode)
	}
}

func TestHTTPEntryWebsite(t *testing.T) {
	st := newStore()
	st.attach(deviceAddr, sim1, "")
	dest := newDest(t, false)
	st.setBeam(udr.DefaultGroup, udr.BeamConfig{
		WebsiteEntryPoint:       {Enabled: true, Destination: dest.URL + "/base", AddSubscriberHeader: true, AddEquipmentHeader: true},
		HTTPEntryPoint + "/x/y": {Enabled: true, Destination: "http://127.0.0.1:1/never"},
	})
	_, srv := beamServer(t, Options{Resolver: st.resolver(), Groups: st, EntryPoint: WebsiteEntryPoint})
	resp, err := clientFrom(t, deviceAddr).Get(srv.URL + "/x/y/z?q=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := dest.take()
	if resp.StatusCode != http.StatusCreated || len(got) != 1 {
		t.Fatalf("status %d %s, %d forwarded", resp.StatusCode, body, len(got))
	}
	if got[0].path != "/base/x/y/z" || got[0].rawQuery != "q=1" {
		t.Errorf("forwarded %s?%s, want /base/x/y/z?q=1", got[0].path, got[0].rawQuery)
	}
	if got[0].header.Get("X-Soracom-Imsi") != sim1.IMSI {
		t.Errorf("no IMSI: %v", got[0].header)
	}
	if _, ok := got[0].header["X-Soracom-Imei"]; ok {
		t.Errorf("IMEI sent though the UE reported none")
	}
}

func TestHTTPEntryTimeout(t *testing.T) {
	st := newStore()
	st.attach(deviceAddr, sim1, imei1)
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	st.setBeam(udr.DefaultGroup, udr.BeamConfig{HTTPEntryPoint + "/": {Enabled: true, Destination: slow.URL}})
	_, srv := beamServer(t, Options{Resolver: st.resolver(), Groups: st, ResponseTimeout: 100 * time.Millisecond})
	resp, err := clientFrom(t, deviceAddr).Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e apiErr
	if resp.StatusCode != http.StatusGatewayTimeout || json.Unmarshal(body, &e) != nil || e.Code != "BEM0005" {
		t.Fatalf("status %d %s, want 504 BEM0005", resp.StatusCode, body)
	}
}

func TestHTTPEntryConnect(t *testing.T) {
	st := newStore()
	st.attach(deviceAddr, sim1, imei1)
	h, err := NewHTTPEntry(Options{Resolver: st.resolver(), Groups: st})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodConnect, "http://beam.soracom.io:8888/", nil)
	r.RemoteAddr = net.JoinHostPort(deviceAddr, "1234")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed || !strings.Contains(w.Body.String(), "BEM0007") {
		t.Fatalf("CONNECT: %d %s", w.Code, w.Body)
	}
}

func TestOptions(t *testing.T) {
	st := newStore()
	for _, o := range []Options{
		{},
		{Resolver: st.resolver()},
		{Resolver: st.resolver(), Groups: st, EntryPoint: "tcp://beam.soracom.io:8023"},
		{Resolver: st.resolver(), Groups: st, EntryPoint: "http://beam.soracom.io:8888/path"},
		{Resolver: st.resolver(), Groups: st, EntryPoint: "::"},
	} {
		if _, err := NewHTTPEntry(o); err == nil {
			t.Errorf("NewHTTPEntry(%+v) accepted", o)
		}
	}
	if _, err := NewTCPEntry(Options{Resolver: st.resolver(), Groups: st, EntryPoint: HTTPEntryPoint}); err == nil {
		t.Error("NewTCPEntry accepted an http entry point")
	}
	if _, err := NewHTTPEntry(Options{Resolver: st.resolver(), Groups: st, EntryPoint: WebsiteEntryPoint + "/"}); err != nil {
		t.Errorf("NewHTTPEntry(website): %v", err)
	}
}
