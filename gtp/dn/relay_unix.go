//go:build unix

package dn

import "syscall"

const rawReadSupported = true

// rawRead is read(2) on a socket the poller manages.
func rawRead(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), b)
		if err == syscall.EINTR {
			continue
		}
		return max(n, 0), err
	}
}
