package endorse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/simgate/simgate/core/udr"
)

// Resolver answers "who is this?" for a token request: the SIM behind the
// request's source (its address on the user plane, later a Wi-Fi binding).
// A request that no SIM session owns is an error wrapping ErrUnknownSource.
// Nothing the client sends can name its identity.
type Resolver interface {
	Resolve(r *http.Request) (Identity, error)
}

// Groups gives the settings of a SIM group. For a group that was never
// configured it returns the defaults (Endorse from udr.DefaultEndorse).
type Groups interface {
	Group(name string) (udr.Group, error)
}

// GroupsFunc adapts a function to Groups.
type GroupsFunc func(name string) (udr.Group, error)

// Group calls f.
func (f GroupsFunc) Group(name string) (udr.Group, error) { return f(name) }

// StoreResolver resolves a request by its source address: Session says which
// PDU session owns the address, SIM gives that subscriber's record.
type StoreResolver struct {
	// Session returns the IMSI, and the IMEI ("" if the UE reported none),
	// of the session that owns src; an error wrapping ErrUnknownSource if
	// none does.
	Session func(ctx context.Context, src netip.Addr) (imsi, imei string, err error)
	// SIM returns the subscriber record of imsi (e.g. (*udr.Store).GetSIM).
	SIM func(imsi string) (udr.SIM, error)
}

// Resolve implements Resolver.
func (s StoreResolver) Resolve(r *http.Request) (Identity, error) {
	src, err := SourceAddr(r)
	if err != nil {
		return Identity{}, err
	}
	imsi, imei, err := s.Session(r.Context(), src)
	if err != nil {
		return Identity{}, fmt.Errorf("endorse: source %s: %w", src, err)
	}
	sim, err := s.SIM(imsi)
	if errors.Is(err, udr.ErrNotFound) {
		// The SIM was deleted while its session lingers: no SIM is behind
		// this source any more.
		return Identity{}, fmt.Errorf("endorse: source %s: %w: %w", src, ErrUnknownSource, err)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("endorse: source %s: sim %s: %w", src, imsi, err)
	}
	return Identity{
		IMSI:   sim.IMSI,
		IMEI:   imei,
		MSISDN: sim.MSISDN,
		SIMID:  sim.SIMID,
		Group:  sim.Group,
		Active: sim.Status == udr.StatusActive,
	}, nil
}

// SourceAddr is the IP address a request came from (IPv4-mapped IPv6
// addresses unmapped).
func SourceAddr(r *http.Request) (netip.Addr, error) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("endorse: remote address %q: %w", r.RemoteAddr, ErrUnknownSource)
	}
	return ap.Addr().Unmap(), nil
}
