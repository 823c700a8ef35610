package gtpu

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// UDP generic segmentation offload (Linux 4.18, udp(7) UDP_SEGMENT).
const gsoMaxSegments = 64 // UDP_MAX_SEGMENTS

var gsoSpace = unix.CmsgSpace(2)

// gsoSupported reports whether the kernel segments UDP sends on uc.
func gsoSupported(uc *net.UDPConn) bool {
	rc, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return false
	}
	return serr == nil
}

// putGSO writes into oob a control message setting the segment size.
func putGSO(oob []byte, size uint16) []byte {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], size)
	return oob[:gsoSpace]
}

// gsoUnsupported: the route's device cannot take segmented sends.
func gsoUnsupported(err error) bool { return errors.Is(err, syscall.EIO) }
