package main

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"syscall"
	"unsafe"
)

// hugeHeapBytes is how much of the heap hugeHeap prepares: what the heap
// grows to before the first collection (collectFirstAt). With 32 MiB,
// when the collector still ran from 4 MB on, a cold prefetch of 1,500
// crates made 800 more faults and used 60 ms more CPU.
const hugeHeapBytes = firstCollectionBytes

// hugeHeap asks Linux to back the next hugeHeapBytes of the Go heap with
// transparent huge pages where the system leaves that to each program
// (THP "madvise", Debian's and Ubuntu's default), as a command starts
// (the app's Before hook, in a goroutine beside the command). Go stopped
// asking for them itself in 1.21.1.
//
// Every first touch of a 4 KiB page is a page fault, and on a virtual
// machine a fault costs 15-20 us: a cold prefetch of 232 crates made
// ~4,000 of them, a quarter of its CPU time. A 2 MiB page is one fault.
// Same run, 11 pairs: 4,350 -> 1,560 faults, 266 -> 194 ms of CPU,
// peak RSS unchanged (~30 MB).
//
// How: a hugeHeapBytes allocation makes the runtime map that much fresh
// heap at once (it is not touched, so it costs no memory); madvise marks
// its range, and a collection frees it for the allocations that follow,
// which take the lowest free addresses. Where THP is "always" or
// "never", or anything fails, it does nothing. It costs ~4 ms, most of
// it that collection (the process's first, whose threads later ones
// reuse), less than it saves on any command that fetches or hashes; it
// runs early, while the heap is small.
func hugeHeap() {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || !bytes.Contains(mode, []byte("[madvise]")) {
		return
	}
	huge := 2 << 20
	if b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"); err == nil {
		if n, err := strconv.Atoi(string(bytes.TrimSpace(b))); err == nil && n > 0 {
			huge = n
		}
	}
	// The allocation alone would start a collection (the heap is over
	// its goal), while the object is still live: one collection, the
	// forced one, frees it.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	heap := make([]byte, hugeHeapBytes)
	p := uintptr(unsafe.Pointer(unsafe.SliceData(heap)))
	lo := int((p+uintptr(huge)-1)&^uintptr(huge-1) - p)
	hi := int((p+uintptr(len(heap)))&^uintptr(huge-1) - p)
	if lo < hi {
		_ = syscall.Madvise(heap[lo:hi], syscall.MADV_HUGEPAGE)
	}
	runtime.KeepAlive(heap)
	runtime.GC()
}
