package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func FuzzParseDevices(f *testing.F) {
	f.Add([]byte(devicesFile))
	f.Add([]byte(`[{"imsi":"001010000000001","imei":"490154203237518","user":"alice"}]`))
	f.Add([]byte("001010000000001,4901542032375107\n001010000000001,490154203237518\n"))
	f.Add([]byte("[] x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ds, err := ParseDevices(data)
		if err != nil {
			if ds != nil {
				t.Fatal("devices and an error")
			}
			return
		}
		// Every registered pair is found again, and only valid ones exist.
		for p, d := range ds.byPair {
			if checkDevice(d) != nil {
				t.Fatalf("invalid device %+v accepted", d)
			}
			if got, ok := ds.Lookup(d.IMSI, d.IMEI); !ok || got != d || p.imsi != d.IMSI {
				t.Fatalf("Lookup(%+v) = %+v %v", d, got, ok)
			}
		}
	})
}

func FuzzParseUsers(f *testing.F) {
	f.Add([]byte(usersFile(f)))
	f.Add([]byte("alice:$2a$04$abcdefghijklmnopqrstuu5cz9yPD5wHLjiOiLbMHgS8VDeC8r0xW\n"))
	f.Add([]byte("a:b:c\n#x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUsers(data)
		if err != nil {
			return
		}
		for name := range u.hashes {
			if checkUsername(name) != nil {
				t.Fatalf("invalid name %q accepted", name)
			}
		}
	})
}

// Whatever arrives at a callback, nothing but a genuine token of a
// registered device opens a session. The seeds hold a genuine token of the
// thief's handset (refused: its IMEI is not registered), so no mutation of
// them may ever answer 200 or set the session cookie.
func FuzzCallback(f *testing.F) {
	e := newEnv(f)
	genuine := e.device(thief).token()
	f.Add(PathLoginCallback, "soracom_endorse_token="+genuine[:len(genuine)-2]+"AA", "")
	f.Add(Path2FACallback, "soracom_endorse_token="+genuine, "soracom_endorse_token=x")
	f.Add(PathLoginCallback, "", "soracom_endorse_token="+strings.Replace(genuine, ".", "..", 1))
	f.Add(PathLoginCallback, "soracom_endorse_token=eyJhbGciOiJub25lIn0.e30.", "")
	f.Fuzz(func(t *testing.T, path, query, form string) {
		if path != PathLoginCallback && path != Path2FACallback {
			path = PathLoginCallback
		}
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(form))
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: PendingCookie, Value: "NOSUCHPENDINGLOGIN"})
		rec := httptest.NewRecorder()
		e.app.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK || strings.Contains(rec.Header().Get("Set-Cookie"), SessionCookie+"=") {
			t.Fatalf("%s ?%q body %q: %d %s", path, query, form, rec.Code, rec.Body)
		}
		if rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("answer is not JSON: %q", rec.Header().Get("Content-Type"))
		}
	})
}
