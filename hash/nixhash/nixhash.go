// Package nixhash holds hash values the way Nix writes and reads them: an
// algorithm plus a digest, printed as SRI (`sha256-<base64>`), nix32, base16
// or base64, and parsed from every form Nix accepts for a fixed-output hash.
//
// It also formats Nix's fixed-output hash mismatch report. It does not hash
// files or NAR archives itself (see package nar); Algorithm.New gives the
// hash.Hash to feed.
package nixhash

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"

	"github.com/cargohash/cargohash/hash/nixbase32"
)

// Algorithm is a hash algorithm Nix knows.
type Algorithm int

// The algorithms, in Nix's names. The zero Algorithm is invalid.
const (
	MD5 Algorithm = iota + 1
	SHA1
	SHA256
	SHA512
)

var algorithms = []struct {
	name string
	size int
	new  func() hash.Hash
}{
	MD5:    {"md5", md5.Size, md5.New},
	SHA1:   {"sha1", sha1.Size, sha1.New},
	SHA256: {"sha256", sha256.Size, sha256.New},
	SHA512: {"sha512", sha512.Size, sha512.New},
}

// ParseAlgorithm returns the algorithm Nix calls name ("sha256", …).
func ParseAlgorithm(name string) (Algorithm, error) {
	for a := MD5; a <= SHA512; a++ {
		if algorithms[a].name == name {
			return a, nil
		}
	}
	return 0, fmt.Errorf("unknown hash algorithm %q (want sha256, sha512, sha1 or md5)", name)
}

func (a Algorithm) valid() bool { return a >= MD5 && a <= SHA512 }

// String returns Nix's name of a.
func (a Algorithm) String() string {
	if !a.valid() {
		return fmt.Sprintf("Algorithm(%d)", int(a))
	}
	return algorithms[a].name
}

// Size is the digest length in bytes.
func (a Algorithm) Size() int { return algorithms[a].size }

// New returns a new hash.Hash computing a.
func (a Algorithm) New() hash.Hash { return algorithms[a].new() }

// Encoding is a textual form of a digest.
type Encoding int

// The encodings Nix prints and parses.
const (
	SRI Encoding = iota // algo-base64, the default
	Nix32
	Base16
	Base64
)

// ParseEncoding accepts the names used by `--to` flags: sri, nix32 (or
// base32), base16 (or hex) and base64.
func ParseEncoding(s string) (Encoding, error) {
	switch s {
	case "sri":
		return SRI, nil
	case "nix32", "base32":
		return Nix32, nil
	case "base16", "hex":
		return Base16, nil
	case "base64":
		return Base64, nil
	}
	return 0, fmt.Errorf("unknown hash format %q (want sri, nix32, base16 or base64)", s)
}

// Hash is a digest with its algorithm. The zero Hash is invalid; values made
// by New, Sum or Parse always have a digest of the algorithm's size.
type Hash struct {
	algo   Algorithm
	digest string
}

// New returns the hash of algorithm a with the given digest.
func New(a Algorithm, digest []byte) (Hash, error) {
	if !a.valid() {
		return Hash{}, fmt.Errorf("invalid hash algorithm %d", int(a))
	}
	if len(digest) != a.Size() {
		return Hash{}, fmt.Errorf("%s digest is %d bytes, want %d", a, len(digest), a.Size())
	}
	return Hash{a, string(digest)}, nil
}

// Sum returns the Hash of h's current state; h must compute a.
func Sum(a Algorithm, h hash.Hash) Hash {
	d := h.Sum(nil)
	if len(d) != a.Size() {
		panic("nixhash.Sum: hash.Hash does not compute " + a.String())
	}
	return Hash{a, string(d)}
}

// Algorithm returns h's algorithm.
func (h Hash) Algorithm() Algorithm { return h.algo }

// Digest returns a copy of the raw digest.
func (h Hash) Digest() []byte { return []byte(h.digest) }

// IsZero reports whether h is the zero (invalid) Hash.
func (h Hash) IsZero() bool { return h.algo == 0 }

// IsFake reports whether the digest is all zero bytes, as in lib.fakeHash
// (`sha256-AAAA…=`) and lib.fakeSha256 (52 zeros in nix32).
func (h Hash) IsFake() bool {
	return h.algo != 0 && strings.Trim(h.digest, "\x00") == ""
}

// Encode prints the digest in encoding e; only SRI carries the algorithm.
func (h Hash) Encode(e Encoding) string {
	d := []byte(h.digest)
	switch e {
	case Nix32:
		return nixbase32.EncodeToString(d)
	case Base16:
		return hex.EncodeToString(d)
	case Base64:
		return base64.StdEncoding.EncodeToString(d)
	}
	return h.algo.String() + "-" + base64.StdEncoding.EncodeToString(d)
}

// String returns the SRI form, `sha256-<base64>`.
func (h Hash) String() string {
	if h.IsZero() {
		return "<invalid hash>"
	}
	return h.Encode(SRI)
}

// Equal reports whether h and o have the same algorithm and digest.
func (h Hash) Equal(o Hash) bool { return h == o }

// MarshalText encodes h in SRI form.
func (h Hash) MarshalText() ([]byte, error) {
	if h.IsZero() {
		return nil, fmt.Errorf("marshaling the zero nixhash.Hash")
	}
	return []byte(h.String()), nil
}

// UnmarshalText parses any form Parse accepts.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := Parse(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Parse reads a hash in any form that names its algorithm: SRI
// (`sha256-<base64>`) or `algo:` followed by nix32, base16 or base64 (told
// apart by length, as Nix does). Bare digests need ParseAs.
func Parse(s string) (Hash, error) { return ParseAs(s, 0) }

// ParseAs is Parse that also accepts a bare digest (nix32, base16 or base64,
// by length). Its algorithm is def when def is not zero; otherwise it is the
// one of sha256, sha512 and sha1 whose encoded lengths include len(s).
func ParseAs(s string, def Algorithm) (Hash, error) {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		a, err := ParseAlgorithm(s[:i])
		if err != nil {
			return Hash{}, fmt.Errorf("parsing hash %q: %w", s, err)
		}
		return decodeBare(s, s[i+1:], a)
	}
	if i := strings.IndexByte(s, '-'); i >= 0 {
		a, err := ParseAlgorithm(s[:i])
		if err != nil {
			return Hash{}, fmt.Errorf("parsing hash %q: %w", s, err)
		}
		d, err := base64.StdEncoding.Strict().DecodeString(s[i+1:])
		if err != nil || len(d) != a.Size() {
			return Hash{}, fmt.Errorf("parsing hash %q: invalid SRI %s hash (want %d base64 characters)", s, a, base64.StdEncoding.EncodedLen(a.Size()))
		}
		return Hash{a, string(d)}, nil
	}
	if def == 0 {
		for _, a := range []Algorithm{SHA256, SHA512, SHA1} {
			if encodedLen(a, len(s)) {
				def = a
				break
			}
		}
		if def == 0 {
			return Hash{}, fmt.Errorf("parsing hash %q: no algorithm given and %d characters fit no sha256, sha512 or sha1 encoding", s, len(s))
		}
	}
	return decodeBare(s, s, def)
}

func encodedLen(a Algorithm, n int) bool {
	size := a.Size()
	return n == hex.EncodedLen(size) || n == nixbase32.EncodedLen(size) || n == base64.StdEncoding.EncodedLen(size)
}

// decodeBare decodes rest, the digest part of s, as nix32, base16 or base64 of algorithm a.
func decodeBare(s, rest string, a Algorithm) (Hash, error) {
	size := a.Size()
	var (
		d    []byte
		err  error
		form string
	)
	switch len(rest) {
	case hex.EncodedLen(size):
		form = "base16"
		d, err = hex.DecodeString(rest)
	case nixbase32.EncodedLen(size):
		form = "nix32"
		d, err = nixbase32.DecodeString(rest)
	case base64.StdEncoding.EncodedLen(size):
		form = "base64"
		d, err = base64.StdEncoding.Strict().DecodeString(rest)
	default:
		return Hash{}, fmt.Errorf("parsing hash %q: a %s hash has %d (base16), %d (nix32) or %d (base64) characters, not %d",
			s, a, hex.EncodedLen(size), nixbase32.EncodedLen(size), base64.StdEncoding.EncodedLen(size), len(rest))
	}
	if err == nil && len(d) != size {
		err = fmt.Errorf("%d bytes, want %d", len(d), size)
	}
	if err != nil {
		return Hash{}, fmt.Errorf("parsing hash %q: invalid %s digest: %v", s, form, err)
	}
	return Hash{a, string(d)}, nil
}

// ParseExpected reads a hash given as the expected output hash of a
// fixed-output derivation, as Nix does: any form ParseAs accepts, bare ones
// taken as def; the empty string stands for the fake hash of def (Nix warns
// "found empty hash, assuming 'sha256-AAAA…='"). Fake reports whether the
// result is a placeholder rather than a real expectation.
func ParseExpected(s string, def Algorithm) (h Hash, fake bool, err error) {
	if s == "" {
		return Hash{def, string(make([]byte, def.Size()))}, true, nil
	}
	h, err = ParseAs(s, def)
	return h, err == nil && h.IsFake(), err
}

// MismatchReport is Nix's error for a fixed-output derivation whose output
// does not have the specified hash, in the wording (Nix ≥ 2.4, SRI hashes)
// that nix-update, nurl and packagers' scripts parse:
//
//	error: hash mismatch in fixed-output derivation '<drv>':
//	         specified: sha256-…
//	            got:    sha256-…
func MismatchReport(drv string, specified, got Hash) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "error: hash mismatch in fixed-output derivation '%s':\n", drv)
	fmt.Fprintf(&b, "         specified: %s\n", specified)
	fmt.Fprintf(&b, "            got:    %s\n", got)
	return b.String()
}
