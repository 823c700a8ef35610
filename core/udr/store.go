// Package udr is the subscriber store: SIMs, groups and their durable SQN.
//
// One bbolt file (conventionally <data-dir>/subscribers.db) holds every SIM
// record with its secrets and its SQN_HE, and the per-group settings
// (SoracomEndorse, SoracomBeam). The store implements aka.Store: the SQN is
// advanced and fsynced inside one transaction before an authentication
// vector built from it can leave the AuC. The package also owns the SIM
// import/export file formats and the SIM file a UE simulator reads.
package udr

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/simgate/simgate/sim/aka"
)

// FileName is the store's file name inside the data directory.
const FileName = "subscribers.db"

// DefaultLockTimeout is how long Open waits for another process to release
// the store file before it gives up.
const DefaultLockTimeout = time.Second

// schemaVersion is the layout of the buckets and records below.
const schemaVersion = 1

var (
	bucketMeta   = []byte("meta")
	bucketSIMs   = []byte("sims")   // IMSI -> simRecord (JSON)
	bucketGroups = []byte("groups") // name -> Group (JSON)
	keySchema    = []byte("schema")
)

// ErrNotFound is returned (wrapped) for an IMSI or group that is not stored.
var ErrNotFound = errors.New("not found")

// ErrExists is returned (wrapped) when adding an IMSI that is already stored.
var ErrExists = errors.New("already exists")

// ErrLocked is returned (wrapped) by Open when another process holds the store.
var ErrLocked = errors.New("store is in use by another process")

// Store is the subscriber database. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	// sqnCallers counts UpdateSQN calls in flight.
	sqnCallers atomic.Int32
}

// Options tune Open.
type Options struct {
	// LockTimeout bounds the wait for another process's lock on the file;
	// 0 means DefaultLockTimeout.
	LockTimeout time.Duration
}

// Open opens (creating if needed) the store at path with default options.
func Open(path string) (*Store, error) { return OpenOptions(path, Options{}) }

// OpenOptions opens (creating if needed) the store at path. The parent
// directory must exist. If another process has the store open, it fails
// with ErrLocked after o.LockTimeout.
func OpenOptions(path string, o Options) (*Store, error) {
	if o.LockTimeout <= 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	// NoSync stays false: every commit is fsynced (the SQN must be durable).
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.LockTimeout, FreelistType: bolt.FreelistMapType})
	if err == nil {
		// UpdateSQN commits concurrent callers together (one fsync for many
		// registrations); a short delay keeps single registrations fast.
		db.MaxBatchDelay = time.Millisecond
	}
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("udr: open %s: %w (no lock after %v; stop the other simgate first)", path, ErrLocked, o.LockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("udr: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("udr: open %s: %w", path, err)
	}
	return s, nil
}

// OpenDir opens <dir>/subscribers.db, creating dir (0700) if needed.
func OpenDir(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("udr: data dir: %w", err)
	}
	return Open(filepath.Join(dir, FileName))
}

func (s *Store) init() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		switch v := meta.Get(keySchema); {
		case v == nil:
			if err := meta.Put(keySchema, []byte{schemaVersion}); err != nil {
				return err
			}
		case len(v) != 1 || v[0] > schemaVersion:
			return fmt.Errorf("schema version %v is newer than this simgate (%d)", v, schemaVersion)
		}
		for _, b := range [][]byte{bucketSIMs, bucketGroups} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close closes the store file and releases its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("udr: close %s: %w", s.path, err)
	}
	return nil
}

// Path returns the store's file name.
func (s *Store) Path() string { return s.path }

// simRecord is the stored form of a SIM: versioned JSON with hex secrets.
type simRecord struct {
	IMSI     string `json:"imsi"`
	MNCLen   int    `json:"mnc_length"`
	SIMID    string `json:"sim_id,omitempty"`
	MSISDN   string `json:"msisdn,omitempty"`
	K        string `json:"k"`
	OP       string `json:"op,omitempty"`
	OPc      string `json:"opc"`
	AMF      string `json:"amf"`
	SQN      uint64 `json:"sqn"`
	IMEILock string `json:"imei_lock,omitempty"`
	Group    string `json:"group"`
	Status   Status `json:"status"`
}

func encodeSIM(s *SIM) ([]byte, error) {
	r := simRecord{
		IMSI: s.IMSI, MNCLen: s.MNCLen, SIMID: s.SIMID, MSISDN: s.MSISDN,
		K: hex.EncodeToString(s.K[:]), OPc: hex.EncodeToString(s.OPc[:]), AMF: hex.EncodeToString(s.AMF[:]),
		SQN: s.SQN, IMEILock: s.IMEILock, Group: s.Group, Status: s.Status,
	}
	if s.OP != nil {
		r.OP = hex.EncodeToString(s.OP[:])
	}
	return json.Marshal(&r)
}

func decodeSIM(b []byte) (SIM, error) {
	var r simRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return SIM{}, fmt.Errorf("corrupt record: %w", err)
	}
	s := SIM{IMSI: r.IMSI, MNCLen: r.MNCLen, SIMID: r.SIMID, MSISDN: r.MSISDN, SQN: r.SQN,
		IMEILock: r.IMEILock, Group: r.Group, Status: r.Status}
	if err := decodeHex(r.K, s.K[:]); err != nil {
		return SIM{}, fmt.Errorf("corrupt record %s: k: %w", r.IMSI, err)
	}
	if err := decodeHex(r.OPc, s.OPc[:]); err != nil {
		return SIM{}, fmt.Errorf("corrupt record %s: opc: %w", r.IMSI, err)
	}
	if err := decodeHex(r.AMF, s.AMF[:]); err != nil {
		return SIM{}, fmt.Errorf("corrupt record %s: amf: %w", r.IMSI, err)
	}
	if r.OP != "" {
		s.OP = new([16]byte)
		if err := decodeHex(r.OP, s.OP[:]); err != nil {
			return SIM{}, fmt.Errorf("corrupt record %s: op: %w", r.IMSI, err)
		}
	}
	return s, nil
}

// decodeHex decodes exactly len(dst) bytes of hex (either case).
func decodeHex(s string, dst []byte) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d bytes (%d hex digits), got %d hex digits", len(dst), 2*len(dst), len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("not hex: %q", s)
	}
	return nil
}

// prepare returns a normalized, validated copy of sim.
func prepare(sim SIM) (SIM, []byte, error) {
	if sim.OP != nil {
		op := *sim.OP
		sim.OP = &op
	}
	if err := sim.Normalize(); err != nil {
		return SIM{}, nil, err
	}
	b, err := encodeSIM(&sim)
	return sim, b, err
}

// AddSIM stores a new SIM (normalized first, see SIM.Normalize); it fails
// with ErrExists if the IMSI is already stored.
func (s *Store) AddSIM(sim SIM) error {
	sim, b, err := prepare(sim)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketSIMs)
		if bk.Get([]byte(sim.IMSI)) != nil {
			return fmt.Errorf("udr: add sim %s: %w", sim.IMSI, ErrExists)
		}
		return bk.Put([]byte(sim.IMSI), b)
	})
}

// PutSIM stores sim, replacing any record with its IMSI (including its SQN).
func (s *Store) PutSIM(sim SIM) error {
	sim, b, err := prepare(sim)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSIMs).Put([]byte(sim.IMSI), b)
	})
}

// batchSize is the number of SIMs written per transaction by AddSIMs and
// PutSIMs: large enough to amortise the fsync, small enough to bound the
// memory of one transaction.
const batchSize = 25_000

// AddSIMs stores many new SIMs. Every record is normalized and validated and
// the IMSIs are checked against each other and the store before anything
// is written; then they are written in IMSI order, batchSize per
// transaction. It fails with ErrExists if any IMSI is already stored.
func (s *Store) AddSIMs(sims []SIM) error { return s.putMany(sims, false) }

// PutSIMs is AddSIMs that replaces existing records instead of failing.
func (s *Store) PutSIMs(sims []SIM) error { return s.putMany(sims, true) }

type encoded struct {
	imsi string
	b    []byte
}

func (s *Store) putMany(sims []SIM, replace bool) error {
	recs := make([]encoded, len(sims))
	for i := range sims {
		sim, b, err := prepare(sims[i])
		if err != nil {
			return fmt.Errorf("%w (entry %d)", err, i+1)
		}
		recs[i] = encoded{sim.IMSI, b}
	}
	// Sorted keys make bbolt's inserts append-like and cheap.
	slices.SortFunc(recs, func(a, b encoded) int { return strings.Compare(a.imsi, b.imsi) })
	for i := 1; i < len(recs); i++ {
		if recs[i].imsi == recs[i-1].imsi {
			return fmt.Errorf("udr: add sims: imsi %s given twice", recs[i].imsi)
		}
	}
	check := func(bk *bolt.Bucket, part []encoded) error {
		if replace {
			return nil
		}
		for _, r := range part {
			if bk.Get([]byte(r.imsi)) != nil {
				return fmt.Errorf("udr: add sims: sim %s: %w", r.imsi, ErrExists)
			}
		}
		return nil
	}
	if err := s.db.View(func(tx *bolt.Tx) error { return check(tx.Bucket(bucketSIMs), recs) }); err != nil {
		return err
	}
	for start := 0; start < len(recs); start += batchSize {
		part := recs[start:min(start+batchSize, len(recs))]
		err := s.db.Update(func(tx *bolt.Tx) error {
			bk := tx.Bucket(bucketSIMs)
			// Keys arrive sorted: fuller pages make a smaller file.
			bk.FillPercent = 0.9
			if err := check(bk, part); err != nil { // a writer may have raced the View
				return err
			}
			for _, r := range part {
				if err := bk.Put([]byte(r.imsi), r.b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("udr: add sims: %d of %d written: %w", start, len(recs), err)
		}
	}
	return nil
}

// GetSIM returns the SIM with the IMSI, or an error wrapping ErrNotFound.
func (s *Store) GetSIM(imsi string) (SIM, error) {
	var sim SIM
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSIMs).Get([]byte(imsi))
		if b == nil {
			return fmt.Errorf("udr: sim %s: %w", imsi, ErrNotFound)
		}
		var err error
		sim, err = decodeSIM(b)
		return err
	})
	return sim, err
}

// ForEachSIM calls fn for each SIM in IMSI (byte) order, in one read
// transaction, until fn returns an error, which it returns.
func (s *Store) ForEachSIM(fn func(SIM) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSIMs).ForEach(func(_, v []byte) error {
			sim, err := decodeSIM(v)
			if err != nil {
				return fmt.Errorf("udr: %w", err)
			}
			return fn(sim)
		})
	})
}

// ListSIMs returns every SIM in IMSI order.
func (s *Store) ListSIMs() ([]SIM, error) {
	var out []SIM
	err := s.ForEachSIM(func(sim SIM) error {
		out = append(out, sim)
		return nil
	})
	return out, err
}

// CountSIMs returns the number of stored SIMs.
func (s *Store) CountSIMs() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketSIMs).Stats().KeyN
		return nil
	})
	return n, err
}

// DeleteSIM removes the SIM with the IMSI; ErrNotFound if there is none.
func (s *Store) DeleteSIM(imsi string) error { return s.DeleteSIMs(imsi) }

// DeleteSIMs removes the SIMs in one transaction: if any IMSI is not stored
// it fails with ErrNotFound and removes none.
func (s *Store) DeleteSIMs(imsis ...string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketSIMs)
		for _, imsi := range imsis {
			if bk.Get([]byte(imsi)) == nil {
				return fmt.Errorf("udr: delete sim %s: %w", imsi, ErrNotFound)
			}
			if err := bk.Delete([]byte(imsi)); err != nil {
				return fmt.Errorf("udr: delete sim %s: %w", imsi, err)
			}
		}
		return nil
	})
}

// UpdateSIM runs fn on the stored SIM and stores the result, validated, in
// one transaction. fn must not change the IMSI.
func (s *Store) UpdateSIM(imsi string, fn func(*SIM) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketSIMs)
		v := bk.Get([]byte(imsi))
		if v == nil {
			return fmt.Errorf("udr: sim %s: %w", imsi, ErrNotFound)
		}
		sim, err := decodeSIM(v)
		if err != nil {
			return fmt.Errorf("udr: %w", err)
		}
		if err := fn(&sim); err != nil {
			return err
		}
		if sim.IMSI != imsi {
			return fmt.Errorf("udr: sim %s: the IMSI of a record cannot change", imsi)
		}
		if err := sim.Validate(); err != nil {
			return err
		}
		b, err := encodeSIM(&sim)
		if err != nil {
			return err
		}
		return bk.Put([]byte(imsi), b)
	})
}

// SetStatus sets a SIM's status (active or inactive).
func (s *Store) SetStatus(imsi string, st Status) error {
	return s.UpdateSIM(imsi, func(sim *SIM) error { sim.Status = st; return nil })
}

// SetIMEILock sets a SIM's IMEI lock: "" (none), an IMEI (15 digits, or 14
// to which the check digit is added) or "<IMEI>|ANONYMOUS".
func (s *Store) SetIMEILock(imsi, lock string) error {
	lock, err := NormalizeIMEILock(lock)
	if err != nil {
		return fmt.Errorf("udr: sim %s: %w", imsi, err)
	}
	return s.UpdateSIM(imsi, func(sim *SIM) error { sim.IMEILock = lock; return nil })
}

// SetGroup moves a SIM to a group ("" means the default group).
func (s *Store) SetGroup(imsi, group string) error {
	if group == "" {
		group = DefaultGroup
	}
	return s.UpdateSIM(imsi, func(sim *SIM) error { sim.Group = group; return nil })
}

// UpdateSQN implements aka.Store. In one bbolt write transaction it reads
// the SIM, calls fn with its credentials and SQN_HE, and stores the SQN fn
// returns; the commit is fsynced before UpdateSQN returns, so a vector built
// from that SQN never leaves before the SQN is on disk (TS 33.102 C.1.1:
// the HE must not reuse a SQN). If fn fails nothing is written. A returned
// SQN beyond 48 bits is an error.
func (s *Store) UpdateSQN(imsi string, fn func(c aka.Credentials, sqn uint64) (uint64, error)) error {
	// Alone, a call commits at once. With others in flight it joins a
	// batch: concurrent calls share one transaction and one fsync, and each
	// returns only after that commit. fn may run again if the batch is
	// retried, with the same inputs (aka.Store says fn must allow it).
	update := s.db.Update
	if s.sqnCallers.Add(1) > 1 {
		update = s.db.Batch
	}
	defer s.sqnCallers.Add(-1)
	return update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketSIMs)
		v := bk.Get([]byte(imsi))
		if v == nil {
			return fmt.Errorf("udr: sqn %s: %w", imsi, ErrNotFound)
		}
		sim, err := decodeSIM(v)
		if err != nil {
			return fmt.Errorf("udr: sqn %s: %w", imsi, err)
		}
		next, err := fn(sim.Credentials(), sim.SQN)
		if err != nil {
			return err
		}
		if next > MaxSQN {
			return fmt.Errorf("udr: sqn %s: %#x is more than 48 bits", imsi, next)
		}
		sim.SQN = next
		b, err := encodeSIM(&sim)
		if err != nil {
			return err
		}
		return bk.Put([]byte(imsi), b)
	})
}

var _ aka.Store = (*Store)(nil)
