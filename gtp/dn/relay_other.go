//go:build !unix

package dn

import "errors"

const rawReadSupported = false

func rawRead(uintptr, []byte) (int, error) { return 0, errors.ErrUnsupported }
