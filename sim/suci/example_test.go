package suci_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log"

	"github.com/simgate/simgate/sim/suci"
)

// A UE conceals its SUPI with Profile A, and the home network de-conceals
// it. The keys are those of TS 33.501 C.4.3.1; a real UE leaves
// EphemeralKey unset.
func Example() {
	supi, err := suci.ParseSUPI("imsi-274012001002086", 3)
	if err != nil {
		log.Fatal(err)
	}
	hnPub, err := suci.ParsePublicKey(suci.SchemeProfileA, "5a8d38864820197c3394b92613b20b91633cbd897119273bf8e4a6f4eec0a650")
	if err != nil {
		log.Fatal(err)
	}
	eph, _ := hex.DecodeString("c80949f13ebe61af4ebdbd293ea4f942696b9e815d7e8f0096bbf6ed7de62256")
	s, err := suci.Conceal(supi, suci.Params{Scheme: suci.SchemeProfileA, KeyID: 1, HNPublicKey: hnPub, EphemeralKey: eph})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s)

	// The home network side: the SUCI string names the scheme and key id.
	parsed, err := suci.Parse(s.String())
	if err != nil {
		log.Fatal(err)
	}
	hnPriv, err := suci.ParsePrivateKey(parsed.Scheme, "c53c22208b61860b06c62e5406a7b330c2b577aa5558981510d128247d38bd1d")
	if err != nil {
		log.Fatal(err)
	}
	got, err := suci.Keys{1: hnPriv}.Deconceal(parsed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got)
	// Output:
	// suci-0-274-012-0-1-1-b2e92f836055a255837debf850b528997ce0201cb82adfe4be1f587d07d8457dcb02352410cddd9e730ef3fa87
	// imsi-274012001002086
}

// The NAS form is the 5GS mobile identity of a Registration Request, from
// octet 4 on.
func ExampleSUCI_MarshalBinary() {
	s, err := suci.Parse("suci-0-208-93-0-0-0-0000000001")
	if err != nil {
		log.Fatal(err)
	}
	b, err := s.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n", b)
	// Output:
	// 0102f839f0ff00000000000010
}

// Errors say what is wrong and wrap a sentinel to test with errors.Is.
func ExampleDeconceal_errors() {
	s, err := suci.Parse("suci-0-274-012-0-1-1-b2e92f836055a255837debf850b528997ce0201cb82adfe4be1f587d07d8457dcb02352410cddd9e730ef3fa88")
	if err != nil {
		log.Fatal(err)
	}
	hnPriv, err := suci.ParsePrivateKey(suci.SchemeProfileA, "c53c22208b61860b06c62e5406a7b330c2b577aa5558981510d128247d38bd1d")
	if err != nil {
		log.Fatal(err)
	}
	_, err = suci.Deconceal(s, hnPriv)
	fmt.Println(err)
	fmt.Println(errors.Is(err, suci.ErrMAC))

	_, err = suci.Keys{2: hnPriv}.Deconceal(s)
	fmt.Println(err)

	_, err = suci.Parse("suci-0-274-012-0-1-0-00")
	fmt.Println(err)
	// Output:
	// suci: deconceal SUCI of 274-012 (scheme A, key id 1): A scheme output: MAC tag mismatch
	// true
	// suci: deconceal SUCI of 274-012 (scheme A, key id 1): unknown home network public key identifier
	// suci: "suci-0-274-012-0-1-0-00": scheme A with home network public key identifier 0: want 0 exactly for the null scheme: malformed
}
