// Package beam owns the SORACOM Beam-style entry points that tag device
// traffic with its SIM identity (../shared/spec/soracom-endorse-beam.md
// section 2): the HTTP entry point (port 8888, an entry path mapped to a
// destination), the Website entry point (port 18080 or 80, the whole path
// mapped) and the TCP->TCP/TCPS entry point (port 8023), plus the 20151001
// request signature a destination verifies them with.
//
// As in the Endorse issuer, the identity never comes from the device: an
// [endorse.Resolver] maps the connection's source to the SIM, and the SIM's
// group ([udr.BeamConfig], the SoracomBeam namespace) says which entry
// points exist and what they add. Entries are keyed by their entry-point URL
// ("http://beam.soracom.io:8888/<path>", "http://beam.soracom.io:18080",
// "tcp://beam.soracom.io:8023"); an entry point serves the keys whose scheme,
// host (case-insensitive) and port equal its own [Options.EntryPoint].
//
// Signature (spec 2.3, 2.4): lowercase hex SHA-256 (not HMAC) of the PSK
// followed by the string to sign. HTTP: every X-Soracom-* field except
// X-Soracom-Signature and X-Soracom-Signature-Version, written
// lowercase-name=value, sorted by name, concatenated with no separator.
// TCP: the identity line's text before ';'.
//
// Choices the public material leaves open, fixed here:
//
//   - HTTP path mapping: of the enabled entries of the entry point, the one
//     with the longest path that is a prefix of the request path at a '/'
//     boundary wins ("/a" serves "/a" and "/a/x", not "/ab"; "/" serves
//     everything; a trailing '/' of an entry path is ignored). The rest of
//     the request path is appended to the destination path and the request
//     query to the destination query (after '&'), so the Website entry
//     (spec 2.1, path "/") maps the whole path below the destination path.
//     A disabled entry is as if absent. Paths with "." or ".." segments are
//     refused (400), so a device cannot climb out of the destination path.
//     The Website entry point on port 80 is the port-18080 one mounted on a
//     second listener: both serve the WebsiteEntryPoint keys.
//   - The request is forwarded with the destination as Host, without the
//     device's Forwarded / X-Forwarded-* fields and adding none; hop-by-hop
//     fields are handled as by any proxy (RFC 9110 7.6.1).
//   - Every X-Soracom-* field the device sent is removed, from the header
//     and the trailer, before anything is added: a device must not forge
//     its identity or signature. Custom headers (append, replace, delete;
//     applied in the order of their names) may not name X-Soracom-* fields,
//     which belong to Beam and the signature; such entries, and any whose
//     name is not a field name or whose value has a control character, are
//     skipped.
//   - X-Soracom-IMSI, -IMEI, -MSISDN and -SIM-ID are added per flag, each
//     only when the network knows the value (a UE that reported no IMEI gets
//     no X-Soracom-IMEI). X-Soracom-Timestamp (epoch milliseconds) is always
//     added. With addSignature and a PSK, X-Soracom-Signature and
//     X-Soracom-Signature-Version: 20151001 follow; the signature covers the
//     timestamp alone when no identity field is present (SORACOM's console
//     refuses that setting; the signature stays verifiable).
//   - TCP: when any identity flag or signing is on, the first bytes sent to
//     the destination are the identity line "imei=.. imsi=.. msisdn=..
//     simId=.. timestamp=..[;signature=<hex>]\n": enabled items in that
//     order, unknown values left out, terminated by LF as the beamtest
//     server reads it (Ruby gets; its fixtures send "\n"). Then bytes are
//     relayed both ways; an end of stream from one side is passed on as a
//     half-close (CloseWrite; for TCPS a TLS close_notify then a TCP FIN),
//     and the connection ends when both directions have ended.
//   - HTTP errors are JSON {"code","message"} as SORACOM API errors:
//     BEM0001 403 not a SIM session, BEM0002 403 SIM inactive, BEM0003 404
//     no enabled entry for the entry point and path, BEM0004 502 destination
//     unreachable or failed, BEM0005 504 destination timed out, BEM0006 400
//     malformed request path, BEM0007 405 CONNECT, BEM0008 500 internal (a
//     store failure, an entry whose destination is unusable, an identity
//     value that cannot be sent). The destination's own answers, errors
//     included, are relayed unchanged. A refused TCP connection is closed
//     without a byte written; the destination is not dialled.
package beam
