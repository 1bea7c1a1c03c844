package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestHugeHeap checks that hugeHeap marks at least hugeHeapBytes less a
// huge page or two of the heap for transparent huge pages ("hg" in the
// VmFlags of /proc/self/smaps) where the system leaves them to each
// program, and nothing where it does not.
func TestHugeHeap(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		t.Skipf("no transparent huge pages here: %v", err)
	}
	before := markedKB(t)
	hugeHeap()
	added := markedKB(t) - before
	if bytes.Contains(mode, []byte("[madvise]")) {
		if added < hugeHeapBytes/1024-2*2048 {
			t.Errorf("THP mode %q: %d KiB more marked for huge pages, want about %d", bytes.TrimSpace(mode), added, hugeHeapBytes/1024)
		}
	} else if added != 0 {
		t.Errorf("THP mode %q: %d KiB more marked for huge pages, want none", bytes.TrimSpace(mode), added)
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
