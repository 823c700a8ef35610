// Package n2 owns the N2 transport: SCTP associations carrying NGAP, over
// kernel SCTP or SCTP-in-UDP.
//
// TS 38.412 7: NGAP runs over SCTP, server port 38412, payload protocol
// identifier 60. Where the kernel has SCTP, associations are kernel SCTP
// sockets (github.com/ishidawataru/sctp), so that real RAN simulators and
// gNBs connect. Where it has none, SCTP runs in userspace
// (github.com/pion/sctp) encapsulated in UDP (RFC 6951, UDP port 9899).
// Either way callers see the same [Conn]: messages on numbered streams,
// written with PPID 60. This package knows nothing of NGAP itself.
//
// pion/sctp v1.12.1 needs four repairs on the wire, which the UDP link
// makes (packet.go): as a client it always uses SCTP port 5000 (the link
// writes the real ports), its HEARTBEATs lack the mandatory Heartbeat Info
// (the link completes them), it cannot parse HEARTBEAT ACK (the link takes
// them out) and it refuses INITs that list the peer's addresses (the link
// takes those parameters out). With them it interworks with usrsctp.
package n2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Transport selects how SCTP is carried.
type Transport string

const (
	// TransportAuto uses kernel SCTP when a probe socket opens, else UDP.
	TransportAuto Transport = "auto"
	// TransportSCTP is kernel SCTP (IP protocol 132).
	TransportSCTP Transport = "sctp"
	// TransportUDP is userspace SCTP encapsulated in UDP (RFC 6951).
	TransportUDP Transport = "udp"
)

// Well-known numbers.
const (
	// NGAPPort is the SCTP port of the NGAP server (TS 38.412 7).
	NGAPPort uint16 = 38412
	// UDPEncapsPort is the IANA port for SCTP over UDP (RFC 6951 5.1, sctp-tunneling).
	UDPEncapsPort uint16 = 9899
	// PPIDNGAP is the SCTP payload protocol identifier of NGAP (TS 38.412 7),
	// in host order: every write carries it.
	PPIDNGAP uint32 = 60
)

// Defaults applied to zero Config fields.
const (
	DefaultStreams          = 16
	DefaultMaxMessageSize   = 64 << 10
	DefaultMTU              = 1200
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultShutdownTimeout  = 2 * time.Second
	// DefaultHeartbeatInterval is HB.interval (RFC 9260 16).
	DefaultHeartbeatInterval = 30 * time.Second
	// DefaultMaxAssociations bounds the associations one UDP listener holds.
	DefaultMaxAssociations = 1024
	// peerTimeoutBeats is Path.Max.Retrans (RFC 9260 16): a single-homed peer
	// silent for this many heartbeat intervals is unreachable.
	peerTimeoutBeats = 5
)

// Errors callers can test with errors.Is.
var (
	// ErrNoKernelSCTP: the kernel cannot open SCTP sockets.
	ErrNoKernelSCTP = errors.New("kernel SCTP unavailable")
	// ErrAborted: the peer aborted the association (RFC 9260 9.1).
	ErrAborted = errors.New("association aborted by peer")
	// ErrPeerTimeout: nothing came from the peer for Config.PeerTimeout.
	ErrPeerTimeout = errors.New("peer unreachable (no packets within the peer timeout)")
	// ErrMessageTooLarge: a message exceeds Config.MaxMessageSize.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrBadStream: a stream number the peer does not accept.
	ErrBadStream = errors.New("stream out of range")
	// ErrEmptyMessage: SCTP carries no empty user messages (RFC 9260 3.3.1).
	ErrEmptyMessage = errors.New("empty message")
)

// Config configures a Listener or a dialled Conn. The zero value is usable:
// auto transport, all addresses, the standard ports.
type Config struct {
	Transport Transport `yaml:"transport" doc:"N2 transport: auto (kernel SCTP if available, else udp), sctp or udp"`
	// LocalAddr is the address Listen listens on, or the local address Dial
	// binds ("" = any). A port given here wins over SCTPPort/UDPPort; ":0"
	// picks a free port.
	LocalAddr string `yaml:"local_addr" doc:"address to listen on (AMF) or to bind (gNB); host or host:port"`
	// SCTPPort is the SCTP port of the NGAP server (default 38412): the
	// kernel-mode listening port, and in UDP mode the port in the SCTP
	// common header.
	SCTPPort uint16 `yaml:"sctp_port" doc:"SCTP port of the NGAP server (38412)"`
	// UDPPort is the UDP encapsulation port of the server (default 9899).
	UDPPort uint16 `yaml:"udp_port" doc:"UDP port for SCTP over UDP (RFC 6951; 9899)"`
	// Streams is how many outbound streams we ask for and inbound streams we
	// allow in kernel mode (default 16). The userspace stack offers 65535.
	Streams uint16 `yaml:"streams" doc:"SCTP streams per association, kernel mode"`
	// MaxMessageSize bounds one message either way (default 64 KiB).
	MaxMessageSize int `yaml:"max_message_size" doc:"largest NGAP message in bytes"`
	// MTU is the largest SCTP packet sent in UDP mode (default 1200, which
	// fits the IPv6 minimum link MTU with the IP and UDP headers).
	MTU int `yaml:"mtu" doc:"largest SCTP packet in UDP mode"`
	// HandshakeTimeout bounds association setup (default 10s).
	HandshakeTimeout time.Duration `yaml:"handshake_timeout" doc:"time allowed for the SCTP four-way handshake"`
	// ShutdownTimeout bounds the graceful shutdown in Close before the
	// association is aborted (default 2s).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" doc:"time allowed for a graceful SCTP shutdown"`
	// HeartbeatInterval: in UDP mode, a HEARTBEAT is sent when the peer has
	// been silent this long (default 30s, RFC 9260 HB.interval).
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" doc:"UDP mode: heartbeat an idle peer this often"`
	// PeerTimeout: in UDP mode, the association fails with ErrPeerTimeout
	// after this long without a packet from the peer (default 5 heartbeat
	// intervals, RFC 9260 Path.Max.Retrans).
	PeerTimeout time.Duration `yaml:"peer_timeout" doc:"UDP mode: declare the peer lost after this much silence"`
	// MaxAssociations bounds the associations of one UDP listener,
	// handshakes included (default 1024).
	MaxAssociations int `yaml:"max_associations" doc:"UDP mode: associations one listener accepts"`

	// Logger receives this package's log lines (default: discard).
	Logger *slog.Logger `yaml:"-"`
	// Tap, if set, sees the traffic (for captures).
	Tap Tap `yaml:"-"`
}

// Tap observes traffic for packet capture. Calls come from several
// goroutines at once; payload is only valid during the call.
type Tap interface {
	// Datagram sees every UDP datagram a UDP-mode endpoint sends (out) or
	// receives, dropped ones included: each carries one SCTP packet.
	Datagram(out bool, local, remote netip.AddrPort, payload []byte)
	// Message sees every user message a kernel-mode association sends or
	// receives (the kernel builds the SCTP packets): its stream, its PPID in
	// host order and the primary addresses.
	Message(out bool, local, remote netip.AddrPort, stream uint16, ppid uint32, payload []byte)
}

// Conn is one SCTP association. ReadMsg and WriteMsg may be called from
// different goroutines; concurrent writes are safe.
type Conn interface {
	// ReadMsg reads the next whole message into b and says on which stream
	// and with which PPID it came. Messages of one stream arrive in order.
	// If b is too short it returns the message length and io.ErrShortBuffer,
	// and keeps the message for the next call. When the association is
	// over it returns io.EOF (the peer shut it down), an error wrapping
	// ErrAborted or ErrPeerTimeout, or net.ErrClosed after Close.
	ReadMsg(b []byte) (n int, stream uint16, ppid uint32, err error)
	// WriteMsg sends b as one message on stream with PPID 60 (NGAP), ordered
	// and reliable. It returns once the message is queued, blocking while
	// the stream's queue is full (UDP mode: 1 MiB unacknowledged; kernel
	// mode: the socket send buffer). TS 38.412 7: stream 0 is for
	// non-UE-associated signalling; the caller picks the others.
	WriteMsg(b []byte, stream uint16) error
	// OutStreams is how many outbound streams the peer accepts (0..n-1).
	OutStreams() uint16
	// Close shuts the association down gracefully (RFC 9260 9.2), or aborts
	// it if that does not finish within Config.ShutdownTimeout.
	Close() error
	// LocalAddr and RemoteAddr are *net.UDPAddr (the encapsulation
	// endpoints) in UDP mode, *sctp.SCTPAddr in kernel mode.
	LocalAddr() net.Addr
	RemoteAddr() net.Addr
	// Transport is TransportUDP or TransportSCTP.
	Transport() Transport
}

// Listener accepts associations, one per peer (gNB).
type Listener interface {
	// Accept waits for the next established association.
	Accept(ctx context.Context) (Conn, error)
	// Addr is the listening address (*net.UDPAddr or *sctp.SCTPAddr).
	Addr() net.Addr
	// Close stops accepting and closes every association of the listener.
	Close() error
	// Transport is TransportUDP or TransportSCTP.
	Transport() Transport
}

// Validate checks the configuration; errors name the field.
func (c Config) Validate() error {
	var errs []error
	switch c.Transport {
	case "", TransportAuto, TransportSCTP, TransportUDP:
	default:
		errs = append(errs, fmt.Errorf("n2: transport: %q is not auto, sctp or udp", c.Transport))
	}
	if c.MaxMessageSize < 0 {
		errs = append(errs, fmt.Errorf("n2: max_message_size: %d is negative", c.MaxMessageSize))
	}
	if c.MTU != 0 && (c.MTU < 512 || c.MTU > 65507) {
		errs = append(errs, fmt.Errorf("n2: mtu: %d is outside 512..65507", c.MTU))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"handshake_timeout", c.HandshakeTimeout}, {"shutdown_timeout", c.ShutdownTimeout},
		{"heartbeat_interval", c.HeartbeatInterval}, {"peer_timeout", c.PeerTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("n2: %s: %v is negative", d.name, d.v))
		}
	}
	if c.MaxAssociations < 0 {
		errs = append(errs, fmt.Errorf("n2: max_associations: %d is negative", c.MaxAssociations))
	}
	if c.LocalAddr != "" {
		if _, _, err := splitHostPort(c.LocalAddr); err != nil {
			errs = append(errs, fmt.Errorf("n2: local_addr: %w", err))
		}
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields set.
func (c Config) withDefaults() Config {
	if c.Transport == "" {
		c.Transport = TransportAuto
	}
	if c.SCTPPort == 0 {
		c.SCTPPort = NGAPPort
	}
	if c.UDPPort == 0 {
		c.UDPPort = UDPEncapsPort
	}
	if c.Streams == 0 {
		c.Streams = DefaultStreams
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = peerTimeoutBeats * c.HeartbeatInterval
	}
	if c.MaxAssociations == 0 {
		c.MaxAssociations = DefaultMaxAssociations
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Listen opens a listener. Cancelling ctx closes it, as Close does.
func Listen(ctx context.Context, cfg Config) (Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	t, err := choose(cfg, "listen")
	if err != nil {
		return nil, err
	}
	if t == TransportSCTP {
		return listenKernel(ctx, cfg)
	}
	return listenUDP(ctx, cfg)
}

// Dial sets up an association with the server at addr ("host" or
// "host:port"; without a port, UDPPort or SCTPPort by transport). ctx bounds
// the setup only; the Conn lives until Close or until the association ends.
func Dial(ctx context.Context, cfg Config, addr string) (Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	t, err := choose(cfg, "dial")
	if err != nil {
		return nil, err
	}
	if t == TransportSCTP {
		return dialKernel(ctx, cfg, addr)
	}
	return dialUDP(ctx, cfg, addr)
}

// KernelSCTP reports whether the kernel opens SCTP sockets: nil if it does,
// else an error wrapping ErrNoKernelSCTP and the cause (EPROTONOSUPPORT
// where the kernel has no SCTP).
func KernelSCTP() error { return probeKernel() }

// choose resolves the transport, probing the kernel for auto and saying in
// one log line which transport it chose.
func choose(cfg Config, op string) (Transport, error) {
	switch cfg.Transport {
	case TransportUDP:
		return TransportUDP, nil
	case TransportSCTP:
		if err := probeKernel(); err != nil {
			return "", fmt.Errorf("n2: %s: transport sctp: %w (use transport udp or auto)", op, err)
		}
		return TransportSCTP, nil
	}
	if err := probeKernel(); err != nil {
		cfg.Logger.Info("n2: transport auto chose udp (SCTP over UDP, RFC 6951)", "op", op, "reason", err.Error())
		return TransportUDP, nil
	}
	cfg.Logger.Info("n2: transport auto chose sctp (kernel SCTP)", "op", op)
	return TransportSCTP, nil
}

// splitHostPort splits "host", "host:port", "[v6]:port" or a bare IPv6
// address; port is -1 when absent.
func splitHostPort(s string) (host string, port int, err error) {
	if ip, perr := netip.ParseAddr(s); perr == nil {
		return ip.String(), -1, nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) && ae.Err == "missing port in address" {
			return s, -1, nil
		}
		return "", 0, fmt.Errorf("address %q: %w", s, err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: bad port %q", s, p)
	}
	return h, int(n), nil
}

// resolve turns "host[:port]" into an address, defaulting the port. An
// empty host is the unspecified address when allowEmpty.
func resolve(ctx context.Context, s string, defPort uint16, allowEmpty bool) (netip.AddrPort, error) {
	host, port, err := splitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if port < 0 {
		port = int(defPort)
	}
	if host == "" {
		if !allowEmpty {
			return netip.AddrPort{}, fmt.Errorf("address %q: no host", s)
		}
		return netip.AddrPortFrom(netip.IPv6Unspecified(), uint16(port)), nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("address %q: no addresses", s)
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(port)), nil
}

// message is one received user message.
type message struct {
	data   []byte
	stream uint16
	ppid   uint32
}

// deliver copies m into b, or reports the length with io.ErrShortBuffer.
func (m *message) deliver(b []byte) (int, error) {
	if len(b) < len(m.data) {
		return len(m.data), io.ErrShortBuffer
	}
	return copy(b, m.data), nil
}

// checkWrite validates an outgoing message.
func checkWrite(b []byte, stream, outStreams uint16, maxSize int) error {
	switch {
	case len(b) == 0:
		return fmt.Errorf("n2: write: %w", ErrEmptyMessage)
	case len(b) > maxSize:
		return fmt.Errorf("n2: write: %d bytes: %w (limit %d)", len(b), ErrMessageTooLarge, maxSize)
	case stream >= outStreams:
		return fmt.Errorf("n2: write: stream %d: %w (peer accepts %d streams)", stream, ErrBadStream, outStreams)
	}
	return nil
}
