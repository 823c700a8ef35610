package main

import (
	"context"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/simgate/simgate/capture"
	"github.com/simgate/simgate/gtp/pfcp"
)

// addPcapFlag gives a network command --pcap.
func (a *app) addPcapFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.pcapPath, "pcap", "",
		"write this process's traffic (N2, N3, N4 and the userspace stacks' inner IP packets) to a pcapng FILE for Wireshark")
}

// openCapture opens the --pcap file; without --pcap it returns nil, whose
// interfaces capture nothing. The writer closes when ctx ends.
func (a *app) openCapture(ctx context.Context) (*capture.Writer, error) {
	if a.pcapPath == "" {
		return nil, nil
	}
	w, err := capture.Open(ctx, a.pcapPath, capture.Config{Logger: a.logger()})
	if err != nil {
		return nil, fmt.Errorf("--pcap: %w", err)
	}
	a.logger().Info("capture: writing pcapng", "file", a.pcapPath)
	return w, nil
}

// n4Conn binds a PFCP socket at addr, tapped into the capture when there is
// one.
func n4Conn(addr string, w *capture.Writer) (pfcp.PacketConn, error) {
	ap, err := pfcp.ParseAddrPort(addr)
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("n4: %w", err)
	}
	if w == nil {
		return conn, nil
	}
	return capture.WrapPacketConn(conn, w.Interface("n4", capture.KindN4)), nil
}
