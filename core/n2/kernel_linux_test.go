//go:build linux && !386

package n2

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"syscall"
	"testing"
	"unsafe"

	"github.com/ishidawataru/sctp"
)

// sndrcvCmsg builds the SCTP_SNDRCV control message the kernel attaches to
// a received message (RFC 6458 5.3.2): struct sctp_sndrcvinfo with the
// stream in host order and the PPID as it was on the wire.
func sndrcvCmsg(stream uint16, wirePPID uint32) []byte {
	const infoLen = 32
	b := make([]byte, syscall.CmsgSpace(infoLen))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = syscall.IPPROTO_SCTP, sctp.SCTP_CMSG_SNDRCV
	h.SetLen(syscall.CmsgLen(infoLen))
	d := b[syscall.CmsgLen(0):]
	binary.NativeEndian.PutUint16(d, stream)
	binary.BigEndian.PutUint32(d[8:], wirePPID)
	return b
}

func TestParseSndRcv(t *testing.T) {
	s, p, ok := parseSndRcv(sndrcvCmsg(7, 60))
	if !ok || s != 7 || p != PPIDNGAP {
		t.Fatalf("parseSndRcv = %d, %d, %v; want 7, 60", s, p, ok)
	}
	for _, b := range [][]byte{nil, {1, 2, 3}, sndrcvCmsg(1, 1)[:syscall.CmsgLen(4)]} {
		if _, _, ok := parseSndRcv(b); ok {
			t.Fatalf("parseSndRcv(%x) ok", b)
		}
	}
}

func TestKernelErrors(t *testing.T) {
	tests := []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.ECONNRESET, ErrAborted},
		{syscall.ETIMEDOUT, ErrPeerTimeout},
		{syscall.EPIPE, io.EOF},
	}
	for _, tt := range tests {
		err := kernelErr("read", tt.errno)
		if !errors.Is(err, tt.want) {
			t.Errorf("%v -> %v, want %v", tt.errno, err, tt.want)
		}
		if !errors.Is(err, tt.errno) {
			t.Errorf("%v lost: %v", tt.errno, err)
		}
	}
	if KernelSCTP() == nil {
		t.Skip("kernel SCTP present")
	}
	// Without kernel SCTP the socket calls themselves fail clearly too.
	cfg := Config{LocalAddr: "127.0.0.1:0"}.withDefaults()
	if _, err := listenKernel(context.Background(), cfg); !errors.Is(err, ErrNoKernelSCTP) {
		t.Fatalf("listenKernel: %v", err)
	}
	if _, err := dialKernel(context.Background(), cfg, "127.0.0.1"); !errors.Is(err, ErrNoKernelSCTP) {
		t.Fatalf("dialKernel: %v", err)
	}
}
