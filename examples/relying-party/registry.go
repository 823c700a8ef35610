package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// maxRegistryLine bounds one line of a devices or users file.
const maxRegistryLine = 4096

// bcrypt hashes are "$2a$" cost "$" and 53 characters of salt and hash.
const (
	bcryptLen     = 60
	maxBcryptCost = 16 // 2^16 rounds: about 4 s a check on a 2020s core
)

// Device is a device registered with the app: a SIM (IMSI) in a handset
// (IMEI), and optionally the user whose second factor it is.
type Device struct {
	IMSI string `json:"imsi"`
	IMEI string `json:"imei"`
	User string `json:"user,omitempty"`
}

// pair keys the registry: the IMSI and the handset's TAC+SNR.
type pair struct{ imsi, equipment string }

// Devices is the set of registered IMSI+IMEI pairs. It is read-only after
// ParseDevices and safe for concurrent use.
type Devices struct {
	byPair map[pair]Device
	sims   map[string]bool // IMSIs with at least one registered handset
}

// equipment is the part of an IMEI or IMEISV that names the handset:
// TS 23.003 6.2.1/6.2.2, IMEI = TAC(8) SNR(6) CD(1), IMEISV = TAC(8) SNR(6)
// SVN(2). The check digit is not sent by the UE (it goes as 0, TS 24.008
// 10.5.1.4) and the SVN changes with software updates, so a handset is the
// same handset when its first 14 digits match.
func equipment(imei string) string {
	if len(imei) < 14 {
		return imei
	}
	return imei[:14]
}

// ParseDevices reads a devices file: either a JSON array of
// {"imsi","imei","user"} objects, or lines "imsi,imei[,user]" where blank
// lines and lines starting with '#' are ignored.
func ParseDevices(data []byte) (*Devices, error) {
	var list []Device
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&list); err != nil {
			return nil, fmt.Errorf("devices: JSON: %w", err)
		}
		if dec.More() {
			return nil, errors.New("devices: JSON: data after the array")
		}
		for i, d := range list {
			if err := checkDevice(d); err != nil {
				return nil, fmt.Errorf("devices: entry %d: %w", i+1, err)
			}
		}
	} else {
		err := eachLine(data, func(n int, line string) error {
			f := strings.Split(line, ",")
			if len(f) < 2 || len(f) > 3 {
				return fmt.Errorf("line %d: want imsi,imei[,user], have %d fields", n, len(f))
			}
			d := Device{IMSI: strings.TrimSpace(f[0]), IMEI: strings.TrimSpace(f[1])}
			if len(f) == 3 {
				d.User = strings.TrimSpace(f[2])
			}
			if err := checkDevice(d); err != nil {
				return fmt.Errorf("line %d: %w", n, err)
			}
			list = append(list, d)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("devices: %w", err)
		}
	}
	ds := &Devices{byPair: make(map[pair]Device, len(list)), sims: make(map[string]bool, len(list))}
	for _, d := range list {
		p := pair{d.IMSI, equipment(d.IMEI)}
		if prev, dup := ds.byPair[p]; dup {
			return nil, fmt.Errorf("devices: IMSI %s with IMEI %s is registered twice (also as IMEI %s)", d.IMSI, d.IMEI, prev.IMEI)
		}
		ds.byPair[p] = d
		ds.sims[d.IMSI] = true
	}
	return ds, nil
}

func checkDevice(d Device) error {
	// TS 23.003 2.2: MCC(3) MNC(2-3) MSIN, at most 15 digits; the simgate
	// issuer and verifier accept 6 to 15.
	if !digits(d.IMSI, 6, 15) {
		return fmt.Errorf("IMSI %q: want 6 to 15 digits", d.IMSI)
	}
	// TS 23.003 6.2: IMEI 15 digits, IMEISV 16.
	if !digits(d.IMEI, 15, 16) {
		return fmt.Errorf("IMEI %q: want 15 digits (or 16 for an IMEISV)", d.IMEI)
	}
	if d.User != "" {
		if err := checkUsername(d.User); err != nil {
			return err
		}
	}
	return nil
}

// Len is the number of registered pairs.
func (ds *Devices) Len() int { return len(ds.byPair) }

// Lookup finds the registered pair of imsi and imei (matched on the
// handset's TAC+SNR, see equipment).
func (ds *Devices) Lookup(imsi, imei string) (Device, bool) {
	if len(imei) < 14 {
		return Device{}, false
	}
	d, ok := ds.byPair[pair{imsi, equipment(imei)}]
	return d, ok
}

// HasSIM reports whether imsi is registered in some handset.
func (ds *Devices) HasSIM(imsi string) bool { return ds.sims[imsi] }

// Users are the accounts of the password step: name -> bcrypt hash. It is
// read-only after ParseUsers and safe for concurrent use.
type Users struct {
	hashes map[string][]byte
	// decoy is compared against for unknown names so that a login attempt
	// takes as long whether or not the name exists.
	decoy []byte
}

// ParseUsers reads a users file: lines "name:bcrypt-hash" (as written by
// `htpasswd -B` or `relying-party hash-password NAME`); blank lines and
// lines starting with '#' are ignored.
func ParseUsers(data []byte) (*Users, error) {
	u := &Users{hashes: map[string][]byte{}}
	maxCost := 0
	err := eachLine(data, func(n int, line string) error {
		name, hash, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("line %d: want name:bcrypt-hash", n)
		}
		name, hash = strings.TrimSpace(name), strings.TrimSpace(hash)
		if err := checkUsername(name); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil || len(hash) != bcryptLen || !strings.HasPrefix(hash, "$2") {
			return fmt.Errorf("line %d: user %s: not a bcrypt hash ($2a$, $2b$ or $2y$, %d characters)", n, name, bcryptLen)
		}
		if c > maxBcryptCost {
			// Each login, and the decoy made at start, would take minutes.
			return fmt.Errorf("line %d: user %s: bcrypt cost %d is over %d", n, name, c, maxBcryptCost)
		}
		if _, dup := u.hashes[name]; dup {
			return fmt.Errorf("line %d: user %s is listed twice", n, name)
		}
		u.hashes[name] = []byte(hash)
		maxCost = max(maxCost, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	// The decoy costs what the dearest real hash costs (with no users there
	// is nothing to hide, and the least cost will do).
	decoy, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), max(maxCost, bcrypt.MinCost))
	if err != nil {
		return nil, fmt.Errorf("users: decoy hash: %w", err)
	}
	u.decoy = decoy
	return u, nil
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.hashes) }

// Check reports whether password is name's password. An unknown name costs
// one bcrypt comparison too.
func (u *Users) Check(name, password string) bool {
	hash, ok := u.hashes[name]
	if !ok {
		_ = bcrypt.CompareHashAndPassword(u.decoy, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
}

// checkUsername admits 1 to 64 printable ASCII characters other than
// space, ',' and ':' (the separators of the two files).
func checkUsername(s string) error {
	if len(s) == 0 || len(s) > 64 {
		return fmt.Errorf("user name %.70q: want 1 to 64 characters", s)
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' || c == ':' || c == ',' {
			return fmt.Errorf("user name %.70q: only printable ASCII without space, ',' or ':'", s)
		}
	}
	return nil
}

// eachLine calls fn with each non-blank, non-comment line (trimmed) and its
// 1-based number.
func eachLine(data []byte, fn func(n int, line string) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 256), maxRegistryLine)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := fn(n, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line longer than %d bytes or unreadable: %w", maxRegistryLine, err)
	}
	return nil
}

func digits(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
