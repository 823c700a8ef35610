// Package suci owns the Subscription Concealed Identifier: concealing a SUPI
// on the UE side and de-concealing it in the home network (the SIDF), with the
// null scheme and ECIES Profiles A (X25519) and B (P-256) of TS 33.501 6.12 and
// Annex C; the SUCI's string form (TS 23.003 2.2B, TS 29.503) and its NAS
// binary form (5GS mobile identity, TS 24.501 9.11.3.4); and the home network
// key pairs the schemes use.
//
// SUPIs of type IMSI are supported with every scheme. SUPIs of type network
// specific identifier (NAI, "nai-user@realm") are supported with the null
// scheme only.
//
// A UE conceals with [Conceal]; a home network de-conceals with [Deconceal]
// (one key) or [Keys.Deconceal] (its keys by identifier). [Parse] and
// [SUCI.String] convert the string form; [SUCI.MarshalBinary] and
// [SUCI.UnmarshalBinary] the NAS form.
package suci
