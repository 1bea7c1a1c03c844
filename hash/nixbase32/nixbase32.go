// Package nixbase32 implements Nix's base-32 encoding ("nix32"), the form of
// the hashes in /nix/store paths and in `nix-hash --base32` output.
//
// It is not RFC 4648 base32: the alphabet is 0123456789abcdfghijklmnpqrsvwxyz
// (no e, o, u, t), there is no padding, and the digest is read as one
// little-endian bit string whose last 5-bit group is printed first. An n-byte
// digest takes ceil(8n/5) characters: character k, counted from the right
// (k = len-1 … 0, printed left to right), holds bits 5k … 5k+4.
//
// The API mirrors encoding/base32.
package nixbase32

import (
	"fmt"
	"strings"
)

// Alphabet is the nix32 alphabet, in digit order.
const Alphabet = "0123456789abcdfghijklmnpqrsvwxyz"

var decodeMap = func() (m [256]byte) {
	for i := range m {
		m[i] = 0xff
	}
	for i := 0; i < len(Alphabet); i++ {
		m[Alphabet[i]] = byte(i)
	}
	return m
}()

// EncodedLen returns the length of the encoding of n source bytes.
func EncodedLen(n int) int {
	if n == 0 {
		return 0
	}
	return (n*8-1)/5 + 1
}

// DecodedLen returns the number of bytes that n encoded characters hold.
func DecodedLen(n int) int { return n * 5 / 8 }

// Encode writes the encoding of src to dst, which must hold EncodedLen(len(src)) bytes.
func Encode(dst, src []byte) {
	n := EncodedLen(len(src))
	for k := n - 1; k >= 0; k-- {
		b := uint(k * 5)
		i, j := b/8, b%8
		c := src[i] >> j
		if int(i)+1 < len(src) {
			c |= src[i+1] << (8 - j)
		}
		dst[n-1-k] = Alphabet[c&0x1f]
	}
}

// EncodeToString returns the nix32 encoding of src.
func EncodeToString(src []byte) string {
	dst := make([]byte, EncodedLen(len(src)))
	Encode(dst, src)
	return string(dst)
}

// A CorruptInputError is the offset of the first bad character, or, when the
// string is too long for its decoded size, of the character whose high bits
// do not fit.
type CorruptInputError int64

func (e CorruptInputError) Error() string {
	return fmt.Sprintf("illegal nix32 data at input byte %d", int64(e))
}

// Decode decodes src into dst, which must hold DecodedLen(len(src)) bytes, and
// returns the number of bytes written. Only canonical encodings are accepted:
// a string whose unused high bits are not zero is corrupt.
func Decode(dst, src []byte) (int, error) {
	n := DecodedLen(len(src))
	clear(dst[:n])
	for idx, ch := range src {
		d := decodeMap[ch]
		if d == 0xff {
			return 0, CorruptInputError(idx)
		}
		b := uint((len(src) - 1 - idx) * 5)
		i, j := b/8, b%8
		if int(i) >= n {
			if d != 0 {
				return 0, CorruptInputError(idx)
			}
			continue
		}
		dst[i] |= d << j
		carry := d >> (8 - j)
		if int(i)+1 < n {
			dst[i+1] |= carry
		} else if carry != 0 {
			return 0, CorruptInputError(idx)
		}
	}
	return n, nil
}

// DecodeString returns the bytes that the nix32 string s represents.
func DecodeString(s string) ([]byte, error) {
	dst := make([]byte, DecodedLen(len(s)))
	n, err := Decode(dst, []byte(s))
	return dst[:n], err
}

// IsValid reports whether s uses only the nix32 alphabet (not whether its
// length fits a digest).
func IsValid(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r > 0xff || decodeMap[r] == 0xff }) < 0
}
