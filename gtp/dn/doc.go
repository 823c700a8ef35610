// Package dn is the data network behind the UPF: a userspace IP stack that
// serves simgate's in-network services and NATs everything else to host
// sockets.
//
// The stack is gVisor's netstack (IPv4, TCP, UDP, ICMP echo) with one NIC.
// The UPF hands it the inner IPv4 packets of uplink G-PDUs ([DN.Inject],
// after its anti-spoofing check) and tunnels the packets the stack emits
// ([DN.SetDownlink], looked up by destination address). The NIC is
// promiscuous and may spoof, so the stack accepts a packet for any address
// and answers from any address: it terminates every flow a device opens.
//
// What a device reaches, by destination:
//
//   - the service addresses (defaults in 100.127.0.0/16, the range SORACOM
//     uses for in-network services): the DNS responder on UDP and TCP 53
//     (dns_addr), the Endorse issuer on HTTP 80 and HTTPS 443
//     (endorse_addr), Beam's entry points on 8888, 8023, 18080 and 80
//     (beam_addr, 100.127.127.100 like SORACOM's beam.soracom.io, spec
//     ../shared/spec/soracom-endorse-beam.md 2.1). Services are ordinary Go
//     servers on gonet listeners ([DN.Serve]); they see the device's address
//     as the remote address, which is what the Endorse and Beam resolvers map
//     to the SIM through the PFCP session table. Other ports of a service
//     address, and any other address of the reserved prefix, are refused:
//     TCP gets a RST, UDP an ICMP port unreachable;
//   - host_alias (default 100.127.0.1, DNS host.simgate.internal): the NAT
//     sends these flows to the host's 127.0.0.1, same port, so a device
//     reaches servers a test engineer runs on loopback;
//   - anything else: the userspace NAT. A TCP SYN makes the NAT dial the
//     destination from the host; a refused or failed dial is answered with a
//     RST, a successful one completes the device's handshake and bytes are
//     spliced both ways, an end of stream passed on as a half-close. A UDP
//     flow (device address and port, destination address and port) gets its
//     own connected host socket, closed after udp_idle_timeout without a
//     datagram either way (RFC 4787 REQ-5: at least 2 minutes by default).
//     With nat.enabled false, or a destination outside nat.allow, the flow is
//     refused as above. Unspecified, loopback, multicast and broadcast
//     destinations are always refused, link-local ones (169.254.0.0/16: cloud
//     metadata services) unless an allow prefix names them, and so are the
//     host sockets listed in nat.protect (simgate's own N2/N3/N4 sockets: a
//     device must not reach the core from the user plane).
//
// ICMP echo requests to the stack's own addresses are answered; echo requests
// to any other address are dropped (the NAT has no unprivileged way to send
// them), so ping fails rather than lying.
//
// DNS (UDP and TCP 53; EDNS(0) up to 1232 octets, else 512, then TC): A
// records for endorse.soracom.io, beam.soracom.io, host.simgate.internal
// (with the NAT on) and the configured hosts, PTR records for their
// addresses; authoritative answers with TTL 60, other types NODATA. Other
// names are resolved through the host's resolver (Go's net.Resolver:
// /etc/hosts, then the system's name servers) when the NAT is on, for the
// types A, CNAME, MX, NS, PTR, SRV and TXT, with TTL 60; AAAA questions get
// NODATA for a name that exists, since the data network is IPv4 only. A
// name the host resolver does not find is NXDOMAIN (NODATA if it has
// addresses), a resolver failure SERVFAIL, other types NOTIMP. With the NAT
// off, other names are REFUSED.
//
// The host network never reaches the token endpoint: it is served only on
// the stack. The key endpoints and metrics stay on host sockets, outside this
// package.
//
// The CA ([LoadOrCreateCA]) is simgate's own certificate authority, kept in
// <data-dir>/ca; it issues the HTTPS certificate of endorse.soracom.io, and
// device code trusts it (simgate ca export).
package dn
