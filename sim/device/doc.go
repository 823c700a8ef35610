// Package device is the simulated devices' userspace IP: one shared gVisor
// stack holding every UE's PDU session address, dialing as a chosen UE, and
// a SOCKS5 proxy.
//
// A process holds one Stack for all of its UEs. Each PDU session adds the
// UE's IPv4 address to the stack's single NIC (AddUE) together with the
// function that carries the UE's uplink packets (the gNB wraps them in
// G-PDUs with the session's UL TEID); downlink inner packets go in through
// Deliver. The stack never routes one UE to another inside the process:
// local delivery is off, so every packet leaves through the NIC and is
// dispatched by its source address to that UE's send function, and the
// network decides what reaches whom, as on a real user plane.
//
// Dial and HTTPClient open connections as a given UE: the local address is
// bound to the UE's address, and host names are resolved by the UE itself,
// over UDP (TCP when truncated) to the DNS server its PDU session named
// (RFC 1035). ServeSOCKS exposes the same to ordinary programs: a SOCKS5
// proxy (RFC 1928) whose user name (RFC 1929) is the IMSI of the UE to speak
// as, so that
//
//	curl --proxy socks5h://<imsi>@127.0.0.1:1080 http://endorse.soracom.io/
//
// fetches a token as that SIM.
//
// Sharing is the point: the stack, its protocol state, timers and buffer
// pools are common; a UE costs an address entry and a table slot (see
// BenchmarkAddUE for the figure), and its sockets cost what they buffer.
package device
