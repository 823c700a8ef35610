// Package core assembles simgate's 5G core in one process: the subscriber
// store (UDR), the UDM with its home-network keys, the AUSF, the AMF on N2 and
// the SMF on N4. Each network function lives in its own package; core only
// wires them together and owns their lifetime.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/simgate/simgate/core/amf"
	"github.com/simgate/simgate/core/ausf"
	"github.com/simgate/simgate/core/n2"
	"github.com/simgate/simgate/core/smf"
	"github.com/simgate/simgate/core/udm"
	"github.com/simgate/simgate/core/udr"
	"github.com/simgate/simgate/gtp/pfcp"
)

// Options says how to start a core.
type Options struct {
	AMF amf.Config
	SMF smf.Config
	UDM udm.Config
	// DataDir holds the subscriber store and the home-network keys.
	DataDir string
	// Store is the subscriber store to use; nil opens DataDir's.
	Store *udr.Store
	// N2Tap, when set, sees the N2 traffic (packet capture).
	N2Tap n2.Tap
	// N4Conn, when set, is the socket the SMF's PFCP node uses (e.g. one
	// wrapped for capture); nil binds SMF.N4Addr.
	N4Conn pfcp.PacketConn
	// Metrics receives the AMF's counters; nil discards them.
	Metrics amf.Metrics
	Log     *slog.Logger
}

// Core is a running core network.
type Core struct {
	Store *udr.Store
	Keys  *udm.Keys
	UDM   *udm.UDM
	AUSF  *ausf.AUSF
	AMF   *amf.AMF
	SMF   *smf.SMF

	n2      n2.Listener
	n4      *pfcp.Client
	ownsDB  bool
	done    chan struct{}
	err     error
	closeMu sync.Once
}

// Start opens the store and keys, binds N2 and N4 and serves until ctx ends.
func Start(ctx context.Context, o Options) (*Core, error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Core{Store: o.Store, done: make(chan struct{})}
	fail := func(err error) (*Core, error) {
		c.release()
		return nil, err
	}
	if c.Store == nil {
		st, err := udr.OpenDir(o.DataDir)
		if err != nil {
			return nil, fmt.Errorf("core: %w", err)
		}
		c.Store, c.ownsDB = st, true
	}
	keys, err := udm.OpenKeys(o.DataDir, log)
	if err != nil {
		return fail(fmt.Errorf("core: %w", err))
	}
	c.Keys = keys
	if c.UDM, err = udm.New(o.UDM, c.Store, keys, nil); err != nil {
		return fail(fmt.Errorf("core: %w", err))
	}
	c.AUSF = ausf.New(c.UDM, ausf.Options{})

	if o.N4Conn != nil {
		if c.n4, err = smf.StartN4(ctx, o.SMF, o.N4Conn, log); err != nil {
			return fail(fmt.Errorf("core: %w", err))
		}
	} else if c.n4, err = smf.ListenN4(ctx, o.SMF, log); err != nil {
		return fail(fmt.Errorf("core: %w", err))
	}
	if c.SMF, err = smf.New(o.SMF, c.n4, log); err != nil {
		return fail(fmt.Errorf("core: %w", err))
	}
	if c.AMF, err = amf.New(o.AMF, amf.Deps{AUSF: c.AUSF, UDM: c.UDM, SMF: c.SMF, Logger: log, Metrics: o.Metrics}); err != nil {
		return fail(fmt.Errorf("core: %w", err))
	}
	ncfg := o.AMF.N2
	ncfg.Logger = log
	if o.N2Tap != nil {
		ncfg.Tap = o.N2Tap
	}
	// The AMF closes the listener when ctx ends.
	if c.n2, err = n2.Listen(context.WithoutCancel(ctx), ncfg); err != nil {
		return fail(fmt.Errorf("core: amf: %w", err))
	}
	log.Info("core: AMF listening for gNBs", "n2", c.n2.Addr().String(), "transport", string(c.n2.Transport()),
		"plmn", o.AMF.PLMN.MCC+"-"+o.AMF.PLMN.MNC)
	go func() {
		defer close(c.done)
		c.err = c.AMF.Serve(ctx, c.n2)
		c.release()
	}()
	return c, nil
}

// N2Addr is the address gNBs connect to.
func (c *Core) N2Addr() net.Addr { return c.n2.Addr() }

// N4Addr is the SMF's PFCP address.
func (c *Core) N4Addr() net.Addr { return net.UDPAddrFromAddrPort(c.n4.Node().LocalAddr()) }

// N4Node is the SMF's PFCP node.
func (c *Core) N4Node() *pfcp.Node { return c.n4.Node() }

// Done is closed when the core has stopped.
func (c *Core) Done() <-chan struct{} { return c.done }

// Wait blocks until the core has stopped and returns why.
func (c *Core) Wait() error {
	<-c.done
	if errors.Is(c.err, context.Canceled) {
		return nil
	}
	return c.err
}

func (c *Core) release() {
	c.closeMu.Do(func() {
		if c.n4 != nil {
			c.n4.Node().Close()
		}
		if c.ownsDB && c.Store != nil {
			c.Store.Close()
		}
	})
}
