// Package gtpu owns GTP-U (TS 29.281) on N3: the message codec and a
// batched UDP socket.
//
// The codec decodes a GTP-U header in place, with no allocation: the
// mandatory part, the optional sequence number, N-PDU number and
// extension-header chain, and the PDU Session Container (TS 38.415 5.5.2:
// PDU type, QFI, RQI, PPP/PPI), returning the payload as a sub-slice. It
// prepends a G-PDU header with a PDU Session Container into headroom the
// caller leaves before a payload, also without allocating. Decoding is
// strict: a bad version, a length that does not match the datagram, a
// truncated extension chain or an unknown extension header whose
// comprehension is required each yield an Error, a small comparable value
// the caller counts by kind. The rarer messages (Echo Request/Response,
// Error Indication, End Marker, Supported Extension Headers Notification)
// are built with github.com/wmnsk/go-gtp's message types and read by a small
// IE walker here.
//
// Conn is the N3 socket (UDP 2152). It reads and writes datagrams in
// batches through golang.org/x/net/ipv4 (recvmmsg/sendmmsg on Linux) with
// preallocated buffers, and where the kernel allows it sends a run of
// equal-sized datagrams to one peer as one segmented message (UDP GSO). It
// answers Echo Requests itself, answers G-PDUs for unknown TEIDs with
// Error Indications rate-limited per peer, counts packets, bytes and drops
// by reason, and can hand every datagram to a capture Tap. Both the UPF
// (gtp/upf) and the simulated gNB (sim/gnb) use it.
package gtpu
