package aka

// Credentials are the long-term secrets a USIM and its AuC share (TS 33.102 6.3).
type Credentials struct {
	K   [16]byte
	OPc [16]byte
	AMF [2]byte
}

// Store is the AuC's view of the subscriber database.
type Store interface {
	// UpdateSQN runs fn with the subscriber's credentials and its current
	// SQN_HE, and durably stores the SQN fn returns before it returns, so
	// that no vector built from that SQN leaves the AuC before the SQN is on
	// disk. If fn returns an error nothing is written. fn may be called more
	// than once (a store may retry a batched transaction): it must compute
	// the same result from the same inputs.
	UpdateSQN(imsi string, fn func(c Credentials, sqn uint64) (uint64, error)) error
}
