// Command sha256rate prints one core's crypto/sha256 throughput in bytes per
// second over 1 GiB of in-memory data: the physical limit of NAR hashing,
// measured in the same run as the benchmark that uses it.
package main

import (
	"crypto/sha256"
	"fmt"
	"time"
)

func main() {
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	h := sha256.New()
	const n = 1024
	start := time.Now()
	for range n {
		h.Write(buf)
	}
	h.Sum(nil)
	fmt.Printf("%.0f\n", float64(n*len(buf))/time.Since(start).Seconds())
}
