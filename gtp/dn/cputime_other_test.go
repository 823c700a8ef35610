//go:build !unix

package dn

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
