package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// errStoreFull: the in-memory upload store is at its size cap.
var errStoreFull = errors.New("upload store is full")

// Upload describes a stored upload.
type Upload struct {
	ID          string    `json:"id"`
	IMSI        string    `json:"imsi"`
	IMEI        string    `json:"imei"`
	TokenID     string    `json:"jti,omitempty"` // the jti of the token that allowed it
	ContentType string    `json:"content_type,omitempty"`
	Bytes       int64     `json:"bytes"`
	SHA256      string    `json:"sha256"`
	Received    time.Time `json:"received"`
}

// UploadStore keeps uploads. Save reads body to its end (the caller bounds
// it) and fills in Bytes and SHA256.
type UploadStore interface {
	Save(u Upload, body io.Reader) (Upload, error)
}

// MemoryUploads keeps uploads in memory up to a total size.
type MemoryUploads struct {
	limit int64

	mu    sync.Mutex
	used  int64
	items map[string]memUpload
}

type memUpload struct {
	Upload
	data []byte
}

// NewMemoryUploads keeps at most limit bytes of uploads.
func NewMemoryUploads(limit int64) *MemoryUploads {
	return &MemoryUploads{limit: limit, items: map[string]memUpload{}}
}

// Save implements UploadStore.
func (m *MemoryUploads) Save(u Upload, body io.Reader) (Upload, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return Upload{}, fmt.Errorf("uploads: reading the body: %w", err)
	}
	sum := sha256.Sum256(data)
	u.Bytes, u.SHA256 = int64(len(data)), hex.EncodeToString(sum[:])
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used+u.Bytes > m.limit {
		return Upload{}, fmt.Errorf("uploads: %d bytes more would pass the %d-byte cap: %w", u.Bytes, m.limit, errStoreFull)
	}
	m.used += u.Bytes
	m.items[u.ID] = memUpload{u, data}
	return u, nil
}

// Get returns a stored upload and its content.
func (m *MemoryUploads) Get(id string) (Upload, []byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.items[id]
	return it.Upload, it.data, ok
}

// DiskUploads writes each upload to <dir>/<imsi>/<id> with its description
// in <id>.json; both appear only once complete (written to a temporary file,
// synced, renamed).
type DiskUploads struct {
	dir string
}

// NewDiskUploads stores uploads under dir, which it creates (0700).
func NewDiskUploads(dir string) (*DiskUploads, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	return &DiskUploads{dir: dir}, nil
}

// Save implements UploadStore. u.IMSI is digits and u.ID base32 text
// (checked), so the path stays inside dir.
func (d *DiskUploads) Save(u Upload, body io.Reader) (Upload, error) {
	if !digits(u.IMSI, 6, 15) || !isIDText(u.ID) {
		return Upload{}, fmt.Errorf("uploads: IMSI %q, id %q: not a safe file name", u.IMSI, u.ID)
	}
	dir := filepath.Join(d.dir, u.IMSI)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Upload{}, fmt.Errorf("uploads: %w", err)
	}
	h := sha256.New()
	n, err := writeAtomic(filepath.Join(dir, u.ID), func(w io.Writer) (int64, error) {
		return io.Copy(io.MultiWriter(w, h), body)
	})
	if err != nil {
		return Upload{}, fmt.Errorf("uploads: %w", err)
	}
	u.Bytes, u.SHA256 = n, hex.EncodeToString(h.Sum(nil))
	meta, err := json.MarshalIndent(u, "", "  ")
	if err != nil {
		return Upload{}, fmt.Errorf("uploads: %w", err)
	}
	if _, err := writeAtomic(filepath.Join(dir, u.ID+".json"), func(w io.Writer) (int64, error) {
		k, err := w.Write(append(meta, '\n'))
		return int64(k), err
	}); err != nil {
		return Upload{}, fmt.Errorf("uploads: %w", err)
	}
	return u, nil
}

// writeAtomic creates path (0600) with what fill writes, or leaves nothing.
func writeAtomic(path string, fill func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".upload-*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	n, err := fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return 0, err
	}
	return n, nil
}

// isIDText reports whether s looks like rand.Text output (base32, A-Z2-7).
func isIDText(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
