//go:build !linux || 386

package n2

import (
	"context"
	"fmt"
	"runtime"
)

// github.com/ishidawataru/sctp supports Linux only (not linux/386).
func probeKernel() error {
	return fmt.Errorf("%w: no kernel SCTP support for %s/%s", ErrNoKernelSCTP, runtime.GOOS, runtime.GOARCH)
}

func listenKernel(context.Context, Config) (Listener, error) {
	return nil, fmt.Errorf("n2: listen: %w", probeKernel())
}

func dialKernel(context.Context, Config, string) (Conn, error) {
	return nil, fmt.Errorf("n2: dial: %w", probeKernel())
}
