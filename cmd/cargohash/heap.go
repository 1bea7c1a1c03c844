package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"sync"
)

// firstCollectionBytes is how large the heap grows before a command's
// first collection: on Linux, the region hugeHeap prepares. A cold
// prefetch of 1,500 crates allocates less than that in all.
const firstCollectionBytes = 64 << 20

// prepareHeap readies the heap for a command, once per process: hugeHeap,
// then collectFirstAt(firstCollectionBytes). The app's Before hook runs it
// in a goroutine beside the command, while the heap is still small.
var prepareHeap = sync.OnceFunc(func() {
	hugeHeap()
	collectFirstAt(firstCollectionBytes)
})

// collectFirstAt lets the heap grow to n bytes before the next
// collection, after which the collector runs as before (GOGC, 100 by
// default).
//
// Why: a command's live heap is small (2-10 MB in a cold prefetch of 232
// crates, ~25 MB for 1,500: buffers of the downloads in flight), but the
// collector first runs at 4 MB and then at twice the live heap, so that
// prefetch collected three times while downloading, each cycle a stop of
// the world (one took 6.9 ms) and fresh span metadata to fault in. In one
// run of 30 pairs: 149 -> 120 ms of CPU, 124 -> 115 ms wall, peak RSS
// 31 -> 32 MB; for 1,500 crates 511 -> 463 ms of CPU, 408 -> 381 ms wall,
// peak RSS 66 -> 76 MB. The cost is bounded: at most n bytes of heap
// (64 MiB, in huge pages where hugeHeap could) before the collector is
// back to normal, as the Go compiler does at its start
// (cmd/compile's AdjustStartingHeap).
//
// How: GOGC is the heap minimum's multiplier (4 MB x GOGC/100), so GOGC
// n/4 MB x 100 makes the next goal n bytes while the live heap is under
// n/(1+GOGC/100); a cleanup on an object made now and dropped runs after
// the next collection and restores the percentage. A GOGC set in the
// environment is left alone.
func collectFirstAt(n int) {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	const heapMinimum = 4 << 20 // the runtime's defaultHeapMinimum
	old := debug.SetGCPercent(n / heapMinimum * 100)
	sentinel := new([64]byte)
	runtime.AddCleanup(sentinel, func(old int) { debug.SetGCPercent(old) }, old)
}
