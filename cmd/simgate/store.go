package main

import (
	"github.com/simgate/simgate/core/udr"
)

// openStore opens the subscriber store, <data-dir>/subscribers.db, creating
// the data directory (0700) if needed. The caller closes it. It fails after
// a short wait if another simgate process holds the store.
func (a *app) openStore() (*udr.Store, error) {
	return udr.OpenDir(a.dataDir)
}
