// Package endorse owns the Endorse token issuer and its signing keys: the
// HTTP endpoint a device on a SIM session calls to get a signed JWT naming its
// SIM (as SORACOM Endorse, ../shared/spec/soracom-endorse-beam.md section 1),
// the key endpoints servers verify with (PEM per kid, JWK Set, discovery), and
// the key ring kept in <data-dir>/endorse.
//
// The identity in a token never comes from the client: a [Resolver] maps the
// request (its source address on the user plane, later a Wi-Fi binding) to
// the SIM, and the SIM's group ([udr.EndorseConfig]) says what goes in the
// token.
//
// Token (spec 1.5, 1.6): a JWS compact serialisation whose header bytes are
// exactly {"kid":"<kid>","alg":"RS256"} (or ES256; no typ) and whose claims
// are serialised in the order of real tokens: iss, aud, exp, jti, iat, nbf,
// sub, soracom-endorse-claim. nbf is iat-60, exp is iat+tokenTimeoutSeconds,
// jti is 16 random bytes in base64url. The claim holds only the items the
// group enables, in this order: imsi, imei, msisdn, simId, requestParameters.
//
// Choices the public material leaves open (spec 1.4, 1.10, 6), each fixed
// here and described in docs/endorse.md:
//
//   - A missing IMEI (or MSISDN, SIM ID) is left out of the claim, never sent
//     as null or "". requestParameters, when enabled, is always present, as
//     {} when the request carried none.
//   - Request parameters: the query string, plus for POST a body of
//     application/json (an object of strings, numbers or booleans; numbers
//     and booleans keep their JSON text) or application/x-www-form-urlencoded.
//     A name given twice keeps its first value; a body value wins over a
//     query value of the same name. Other content types with a non-empty body
//     get 415. redirect_url is reserved: it is never copied into
//     requestParameters.
//   - redirect_url must be an absolute http or https URL matching one of the
//     group's authorizedRedirectUrls. Matching (endorse.redirect_match):
//     "exact" (default) compares scheme and host case-insensitively, with a
//     default port equal to no port, and the path exactly, with "" equal to
//     "/"; the query and fragment of redirect_url are not compared. "prefix"
//     also admits paths below the authorised one, at a '/' boundary. URLs a
//     browser could read differently are refused: user information, a
//     backslash, spaces or control characters, dot or empty path segments.
//   - The token is appended to the redirect URL's query as
//     soracom_endorse_token=<token>, after '&' when the URL already has a
//     query and after '?' otherwise; the fragment is kept. The status is 302
//     for GET and 303 for POST (endorse.redirect_status_get, _post).
//   - allowOrigin: every response to a SIM of that group (errors included)
//     carries Access-Control-Allow-Origin with the configured value and
//     Vary: Origin. OPTIONS is a CORS preflight: 204 with the allowed methods
//     (GET, POST), the requested headers and Max-Age 600.
//   - Errors are JSON {"code","message"} as SORACOM's API errors (spec 1.10):
//     END0001 403 not a SIM session, END0002 403 SIM inactive, END0003 403
//     Endorse disabled for the group, END0004 400 redirect_url not
//     authorised or not a URL, END0005 400 malformed query or body, END0006
//     413 body over endorse.max_body_bytes, END0007 405 other methods,
//     END0008 415 unsupported body type, END0009 500 internal (a store or
//     signing failure, or a group setting out of range). Nothing is issued.
//     The key endpoints answer END0010 (not a kid) and END0011 (no such
//     key) with 404.
//   - A group's tokenTimeoutSeconds of 0 means the default, 600 s; it may not
//     exceed endorse.max_token_timeout.
//
// Keys (spec 1.8): the kid is "v1-" + hex of the first 16 bytes of SHA-256
// over the public key's SubjectPublicKeyInfo DER + "-x509.pem". Keys live in
// <data-dir>/endorse/keys.json (file 0600, directory 0700), written
// atomically; only the signing key keeps its private half. Rotation makes a
// new key the signer and keeps the old public key published until
// retired_at + max_token_timeout + 60 s, by which time every token it signed
// has expired; keys past that are dropped when the ring is opened. Changing
// endorse.algorithm rotates the key at the next open.
package endorse
