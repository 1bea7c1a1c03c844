package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// gcPercent is the collector's GOGC now.
func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// sink keeps the last allocation of allocate reachable, so that none is
// optimized away.
var sink []byte

// allocate allocates n bytes in 256 KiB pieces, each garbage as soon as
// the next is made.
func allocate(n int) {
	for range n / (256 << 10) {
		sink = make([]byte, 256<<10)
	}
}

// TestCollectFirstAt checks that the heap grows to the size given before
// the next collection, that the collector is back to its GOGC after it,
// and that a GOGC set in the environment is left alone. Each case runs in
// a process of its own (this test binary again), whose collector no other
// test has tuned.
func TestCollectFirstAt(t *testing.T) {
	if os.Getenv("CARGOHASH_TEST_COLLECTFIRST") == "1" {
		before := gcPercent()
		collectFirstAt(64 << 20)
		during := gcPercent()
		gcs := func() uint32 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.NumGC
		}
		n := gcs()
		allocate(40 << 20)
		grown := gcs() - n
		allocate(200 << 20) // past the goal: collected, more than once
		deadline := time.Now().Add(5 * time.Second)
		for gcPercent() != before && time.Now().Before(deadline) {
			runtime.GC() // the cleanup runs on its own goroutine
			time.Sleep(time.Millisecond)
		}
		fmt.Printf("before %d during %d collections %d after %d\n", before, during, grown, gcPercent())
		return
	}
	for _, tc := range []struct {
		gogc string // "" unset
		want string
	}{
		{"", "before 100 during 1600 collections 0 after 100"},
		{"50", "before 50 during 50 collections"},
		{"off", "before -1 during -1 collections 0 after -1"},
	} {
		t.Run("GOGC="+tc.gogc, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestCollectFirstAt$")
			cmd.Env = []string{"CARGOHASH_TEST_COLLECTFIRST=1"}
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "GOGC=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			if tc.gogc != "" {
				cmd.Env = append(cmd.Env, "GOGC="+tc.gogc)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if !strings.HasPrefix(string(out), tc.want) {
				t.Errorf("got %q, want it to start with %q", out, tc.want)
			}
		})
	}
}
