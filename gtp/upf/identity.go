package upf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/simgate/simgate/endorse"
	"github.com/simgate/simgate/gtp/pfcp"
)

// ErrNoSession is returned (wrapped) by Identity for an address no session
// owns.
var ErrNoSession = errors.New("no PDU session has this address")

// Identity returns the IMSI and IMEI of the session that owns the UE
// address src, from the PFCP User ID IE; an error wrapping ErrNoSession if
// none does. With a wrap of endorse.ErrUnknownSource it is what
// endorse.StoreResolver.Session needs (see IdentityFunc).
func (t *Table) Identity(src netip.Addr) (imsi, imei string, err error) {
	s, ok := t.LookupByAddr(src)
	if !ok {
		return "", "", fmt.Errorf("upf: %s: %w", src, ErrNoSession)
	}
	if s.IMSI == "" {
		return "", "", fmt.Errorf("upf: %s: session %#x has no IMSI in its User ID: %w", src, s.UPSEID, ErrNoSession)
	}
	return s.IMSI, s.IMEI, nil
}

// EndorseSession is endorse.StoreResolver.Session on the session table: the
// IMSI and IMEI of the PDU session whose UE address is src, as the SMF
// gave them in the PFCP User ID; an error wrapping endorse.ErrUnknownSource
// when no session owns src (released, never established, or spoofed).
func (t *Table) EndorseSession(_ context.Context, src netip.Addr) (imsi, imei string, err error) {
	imsi, imei, err = t.Identity(src)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", endorse.ErrUnknownSource, err)
	}
	return imsi, imei, nil
}

// UserID returns the PFCP User ID (IMSI, IMEI, MSISDN) of the session that
// owns src; an error wrapping ErrNoSession if none does.
func (t *Table) UserID(src netip.Addr) (pfcp.UserID, error) {
	s, ok := t.LookupByAddr(src)
	if !ok {
		return pfcp.UserID{}, fmt.Errorf("upf: %s: %w", src, ErrNoSession)
	}
	return s.UserID, nil
}
