package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestHugeHeap checks that hugeHeap marks at least hugeHeapBytes less a
// huge page or two of the heap for transparent huge pages ("hg" in the
// VmFlags of /proc/self/smaps) where the system leaves them to each
// program, and nothing where it does not; and that it collects once
// (the forced collection that frees its allocation), not also when the
// allocation puts the heap over its goal.
//
// It runs in a process of its own (this test binary again), whose heap no
// other test has marked yet.
func TestHugeHeap(t *testing.T) {
	if os.Getenv("CARGOHASH_TEST_HUGEHEAP") == "1" {
		before := markedKB(t)
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		n := m.NumGC
		hugeHeap()
		runtime.ReadMemStats(&m)
		fmt.Println("added", markedKB(t)-before, "collections", m.NumGC-n)
		return
	}
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		t.Skipf("no transparent huge pages here: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHugeHeap$")
	cmd.Env = append(os.Environ(), "CARGOHASH_TEST_HUGEHEAP=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var added, gcs int
	if _, err := fmt.Sscanf(string(out), "added %d collections %d", &added, &gcs); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if bytes.Contains(mode, []byte("[madvise]")) {
		if added < hugeHeapBytes/1024-2*2048 {
			t.Errorf("THP mode %q: %d KiB more marked for huge pages, want about %d", bytes.TrimSpace(mode), added, hugeHeapBytes/1024)
		}
		if gcs != 1 {
			t.Errorf("THP mode %q: %d collections, want 1", bytes.TrimSpace(mode), gcs)
		}
	} else if added != 0 || gcs != 0 {
		t.Errorf("THP mode %q: %d KiB more marked for huge pages and %d collections, want none", bytes.TrimSpace(mode), added, gcs)
	}
}

// markedKB is the size of this process's mappings marked for huge pages.
func markedKB(t *testing.T) int {
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	total, size := 0, 0
	for _, line := range strings.Split(string(smaps), "\n") {
		if v, ok := strings.CutPrefix(line, "Size:"); ok {
			size, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok && strings.Contains(" "+flags+" ", " hg ") {
			total += size
		}
	}
	return total
}
