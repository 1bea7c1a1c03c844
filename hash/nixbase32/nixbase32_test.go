package nixbase32

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

func TestKnownValues(t *testing.T) {
	// The round trip against real Nix over random digests is in
	// hash/nixhash's reference test; this pins one value offline.
	sum := sha256.Sum256([]byte("hello\n"))
	got := EncodeToString(sum[:])
	// `echo hello | nix-hash --type sha256 --flat --base32 /dev/stdin`
	if want := "00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq"; got != want {
		t.Fatalf("EncodeToString = %s, want %s", got, want)
	}
}

func TestRoundTripAllLengths(t *testing.T) {
	for n := 0; n <= 64; n++ {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i*37 + n)
		}
		enc := EncodeToString(src)
		if len(enc) != EncodedLen(n) {
			t.Fatalf("len %d: encoded length %d, want %d", n, len(enc), EncodedLen(n))
		}
		dec, err := DecodeString(enc)
		if err != nil {
			t.Fatalf("len %d: %v", n, err)
		}
		if !bytes.Equal(dec, src) {
			t.Fatalf("len %d: round trip %x != %x", n, dec, src)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, s := range []string{
		"e",  // not in the alphabet
		"0u", // not in the alphabet
		"zz", // 10 bits for 1 byte: high bits set
		"z0000000000000000000000000000000000000000000000000000"[:52], // top bits of a sha256 overflow
	} {
		if _, err := DecodeString(s); err == nil {
			t.Errorf("DecodeString(%q): no error", s)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{0})
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Fuzz(func(t *testing.T, src []byte) {
		dec, err := DecodeString(EncodeToString(src))
		if err != nil || !bytes.Equal(dec, src) {
			t.Fatalf("round trip of %x: %x, %v", src, dec, err)
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add("00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq")
	f.Fuzz(func(t *testing.T, s string) {
		dec, err := DecodeString(s)
		if err != nil {
			return
		}
		if again := EncodeToString(dec); len(s) == EncodedLen(len(dec)) && again != s {
			t.Fatalf("%q decodes to %x which encodes to %q", s, dec, again)
		}
	})
}
