package udr

import (
	"fmt"

	"github.com/simgate/simgate/sim/milenage"
)

// DeriveOPc computes OPc from the operator variant OP and a subscriber's K
// (TS 35.206 4.1: OPc = OP xor E_K(OP)).
func DeriveOPc(k, op [16]byte) ([16]byte, error) {
	opc, err := milenage.OPc(k, op)
	if err != nil {
		return [16]byte{}, fmt.Errorf("opc: %w", err)
	}
	return opc, nil
}
