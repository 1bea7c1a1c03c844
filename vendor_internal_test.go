package cargohash

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"testing"
)

// TestGzipIndependentOfCores: the tarball's gzip bytes do not depend on how
// many blocks are compressed at once (the machine's core count), and the
// standard library reads them back.
func TestGzipIndependentOfCores(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 5*gzipBlock+12345)
	for i := range data {
		data[i] = "abcdefgh\n "[rng.IntN(10)]
	}
	var first []byte
	for _, parallel := range []int{1, 2, 7} {
		var b bytes.Buffer
		zw, err := newGzip(&b, parallel)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(data)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b.Bytes()
		} else if !bytes.Equal(first, b.Bytes()) {
			t.Fatalf("gzip output with %d blocks at once differs from 1", parallel)
		}
	}
	zr, err := gzip.NewReader(bytes.NewReader(first))
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("round trip: %v", err)
	}
	if zr.Header.Name != "" || !zr.Header.ModTime.IsZero() {
		t.Fatalf("gzip header has name %q, mtime %v", zr.Header.Name, zr.Header.ModTime)
	}
}
