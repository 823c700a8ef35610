// Package ue is a simulated UE: USIM, NAS-5GS mobility and session
// management, NAS security.
//
// A UE is pure protocol logic. It moves no bytes itself: the gNB simulator
// (sim/gnb) carries the NAS PDUs the UE returns to the AMF and hands the UE
// what the AMF sends. It starts no goroutines and keeps a few hundred bytes of
// state, so that one process can hold thousands of UEs.
//
// What it implements, by the core's and the RAN simulator's shared contract:
//
//   - registration (TS 24.501 5.5.1.2) with a SUCI concealed with the null
//     scheme or ECIES Profile A/B (sim/suci), or with the 5G-GUTI it holds;
//     the initial REGISTRATION REQUEST carries cleartext IEs only and the
//     complete message goes in the SECURITY MODE COMPLETE (TS 24.501 4.4.6);
//   - 5G AKA (TS 33.501 6.1.3.2) with the USIM of sim/aka: RES*, KAUSF,
//     KSEAF, KAMF (sim/kdf); AUTHENTICATION FAILURE with #20 (MAC failure),
//     #21 (synch failure, AUTS), #26 (AMF separation bit not set) and #71;
//   - the security mode control procedure (TS 24.501 5.4.2; TS 33.501 6.7.2):
//     the MAC of the SECURITY MODE COMMAND is checked with the KNASint
//     derived from the new KAMF (SECURITY MODE REJECT #24 on failure, #23
//     when the replayed UE security capabilities differ), then every message
//     is integrity protected and ciphered with 128-NIA1/2/3 and
//     128-NEA0/1/2/3 (github.com/free5gc/nas), with NAS COUNTs; downlink
//     messages that fail the integrity check or replay a NAS COUNT are
//     discarded (TS 24.501 4.4.3, 4.4.4.2);
//   - identification, registration accept/reject, UE- and network-initiated
//     deregistration, configuration update;
//   - PDU session establishment and release (TS 24.501 6.4.1, 6.4.3) over
//     UL/DL NAS TRANSPORT.
//
// Misbehave makes the UE deviate on purpose (wrong RES*, another IMEI, no
// IMEISV, replayed or tampered messages, a corrupted AUTN) so that tests can
// check how the core rejects it.
package ue
