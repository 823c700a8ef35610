// Package capturetest owns the tshark checks tests run on the captures
// simgate writes: nothing malformed, no expert error, every SCTP checksum
// verified, and what each frame decodes as.
//
// tshark is run through pfcptest.Tshark: without tshark a test is skipped
// with the reason, except under CI=true, where it fails.
package capturetest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/simgate/simgate/gtp/pfcp/pfcptest"
)

// Filters selecting the frames a capture must not have (tshark 4.0: the
// expert severities compare by name).
const (
	ErrorFilter   = `_ws.malformed || _ws.expert.severity >= "Error"`
	WarningFilter = `_ws.malformed || _ws.expert.severity >= "Warning"`
)

// Options tune Check.
type Options struct {
	// Args are extra tshark options placed before the filter, such as
	// "-d", "udp.port==29899,sctp" for SCTP over UDP on a port other than
	// 9899, or "-o", "nas-5gs.null_decipher:TRUE".
	Args []string
	// Warnings makes expert warnings fail the check too, not only errors.
	Warnings bool
}

// Frame is one frame as tshark decodes it.
type Frame struct {
	Number    int
	Interface string // pcapng interface name
	Protocols string // frame.protocols, e.g. "raw:ip:udp:pfcp"
}

// Result is the frames of a checked capture.
type Result struct {
	Frames []Frame
}

// Has reports whether some frame decodes as proto (a frame.protocols
// element such as "ngap" or "http").
func (r Result) Has(proto string) bool {
	for _, f := range r.Frames {
		if slices.Contains(strings.Split(f.Protocols, ":"), proto) {
			return true
		}
	}
	return false
}

// String lists the frames, one a line.
func (r Result) String() string {
	var b strings.Builder
	for _, f := range r.Frames {
		fmt.Fprintf(&b, "%4d %-10s %s\n", f.Number, f.Interface, f.Protocols)
	}
	return b.String()
}

// base are the options every run gets: SCTP CRC32c verification (tshark's
// default is none).
var base = []string{"-n", "-o", "sctp.checksum:CRC-32C"}

// Check has tshark read the capture at path: it fails the test if a frame
// is malformed or carries an expert error (or warning, with
// opts.Warnings), showing those frames in full, and returns every frame's
// interface and protocols.
func Check(t testing.TB, path string, opts Options) Result {
	t.Helper()
	filter := ErrorFilter
	if opts.Warnings {
		filter = WarningFilter
	}
	args := append(append([]string{"-r", path}, base...), opts.Args...)
	if bad := pfcptest.Tshark(t, append(slices.Clone(args), "-Y", filter)...); strings.TrimSpace(bad) != "" {
		detail := pfcptest.Tshark(t, append(slices.Clone(args), "-V", "-Y", filter)...)
		t.Fatalf("tshark flags frames of %s:\n%s\n%s", path, bad, detail)
	}
	var res Result
	for _, row := range Fields(t, path, opts.Args, "frame.number", "frame.interface_name", "frame.protocols") {
		n, err := strconv.Atoi(row[0])
		if err != nil {
			t.Fatalf("tshark frame number %q", row[0])
		}
		res.Frames = append(res.Frames, Frame{Number: n, Interface: row[1], Protocols: row[2]})
	}
	return res
}

// Fields runs tshark on path with args (options, a "-Y" filter) and
// returns the given fields of every frame shown, one row per frame; a
// field occurring several times in a frame is joined with ",".
func Fields(t testing.TB, path string, args []string, fields ...string) [][]string {
	t.Helper()
	cmd := append(append([]string{"-r", path}, base...), args...)
	cmd = append(cmd, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,")
	for _, f := range fields {
		cmd = append(cmd, "-e", f)
	}
	out := pfcptest.Tshark(t, cmd...)
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		row := strings.Split(line, "|")
		if len(row) != len(fields) {
			t.Fatalf("tshark row %q: %d fields, want %d", line, len(row), len(fields))
		}
		rows = append(rows, row)
	}
	return rows
}
