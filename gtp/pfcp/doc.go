// Package pfcp owns PFCP (TS 29.244) nodes: associations, heartbeats,
// requests with retransmission, over UDP 8805.
//
// github.com/wmnsk/go-pfcp encodes and decodes the messages; it has no
// networking, so this package supplies it: a Node bound to a UDP socket that
// numbers its requests (24-bit sequence numbers), retransmits them on T1 up to
// N1 times (TS 29.244 6.4), matches responses, answers retransmitted requests
// from a cache of recent responses without running the handler again,
// dispatches requests to handlers by message type, runs the PFCP association
// (TS 29.244 6.2.6) and heartbeat (TS 29.244 6.2.2) procedures, and reports a
// peer's release, restart (changed Recovery Time Stamp) or loss (heartbeats
// unanswered) through a callback.
//
// On top of a Node, Client is the CP function's side of N4 (used by the SMF):
// session establishment, modification and deletion built from small structs
// (PDR, FAR, QER, UserID) that this package encodes to and decodes from
// go-pfcp IEs. The UP function's side is gtp/upf.
package pfcp
