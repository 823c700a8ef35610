//go:build !linux

package gtpu

import "net"

// Elsewhere every datagram is sent alone.
const (
	gsoMaxSegments = 1
	gsoSpace       = 0
)

func gsoSupported(*net.UDPConn) bool { return false }

func putGSO(oob []byte, _ uint16) []byte { return nil }

func gsoUnsupported(error) bool { return false }
