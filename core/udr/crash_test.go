package udr

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/simgate/simgate/sim/aka"
)

// The crash test re-runs this test binary as a child that hands out SQNs.
const (
	crashEnvStore = "SIMGATE_UDR_CRASH_STORE"
	crashIMSI     = "001010000000001"
	crashStep     = 32 // TS 33.102 C.3.2: SEQ advances, IND in the low 5 bits
)

// TestCrashChild is the child's body: an endless loop of UpdateSQN calls,
// printing each SQN once UpdateSQN has returned (the moment a vector built
// from it could leave the AuC). It does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnvStore)
	if path == "" {
		t.Skip("helper process for TestNoSQNReuseAfterCrash")
	}
	s, err := Open(path)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for {
		var handed uint64
		err := s.UpdateSQN(crashIMSI, func(_ aka.Credentials, sqn uint64) (uint64, error) {
			handed = sqn + crashStep
			return handed, nil
		})
		if err != nil {
			fmt.Println("update:", err)
			os.Exit(2)
		}
		fmt.Fprintf(out, "%d\n", handed)
		out.Flush()
	}
}

// TestNoSQNReuseAfterCrash kills (SIGKILL) a process in the middle of its
// UpdateSQN loop, reopens the store and checks that the stored SQN_HE is at
// least every SQN the process reported handed out, so a restarted AuC never
// reuses one. It repeats that a few times on the same store.
func TestNoSQNReuseAfterCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddSIM(simN(1)); err != nil { // simN(1) has IMSI crashIMSI
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for round, kills := range []int{1, 20, 80, 200} {
		highest := runAndKill(t, path, kills)
		s, err := Open(path)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		sim, err := s.GetSIM(crashIMSI)
		s.Close()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		// Stored >= every reported SQN; and at most one update (committed
		// but not yet printed when the kill came) beyond the last report.
		if sim.SQN < highest {
			t.Fatalf("round %d: stored SQN %d < handed-out SQN %d: SQN reuse after restart", round, sim.SQN, highest)
		}
		if sim.SQN > highest+crashStep {
			t.Fatalf("round %d: stored SQN %d more than one step beyond the last handed out (%d)", round, sim.SQN, highest)
		}
		t.Logf("round %d: killed after %d reports, highest %d, stored %d", round, kills, highest, sim.SQN)
	}
}

// runAndKill starts the child, lets it report at least n SQNs, kills it and
// returns the highest SQN it reported. Each report must exceed the previous.
func runAndKill(t *testing.T, path string, n int) uint64 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvStore+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	timer := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() }) // a hung child fails the test, not CI
	defer timer.Stop()

	var highest uint64
	sc := bufio.NewScanner(stdout)
	for seen := 0; sc.Scan(); seen++ {
		v, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child: %s", sc.Text())
		}
		if v <= highest {
			t.Fatalf("child handed out %d after %d", v, highest)
		}
		highest = v
		if seen+1 >= n {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	// Drain what the child printed before it died: it was handed out too.
	for sc.Scan() {
		if v, err := strconv.ParseUint(sc.Text(), 10, 64); err == nil && v > highest {
			highest = v
		}
	}
	cmd.Wait()
	killed = true
	if highest == 0 {
		t.Fatal("child reported nothing")
	}
	return highest
}
