package fetch

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/multiformats/go-multihash"
)

// store streams r into a temporary file next to dst while hashing it,
// compares the hash with want and renames the file to dst. On any failure
// no file is left. There is no fsync: every read of the store re-verifies
// the checksum (verifyFile), so a file a crash left torn is found and
// fetched again, and a sync per crate cost more than the download on a
// fast link.
func (f *Fetcher) store(r io.Reader, want []byte, dst string, progress func(int64)) (n int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	w := io.MultiWriter(tmp, h)
	if progress != nil {
		w = &progressWriter{w: w, fn: progress}
	}
	n, err = io.Copy(w, io.LimitReader(r, f.opts.MaxSize+1))
	if err != nil {
		return n, err
	}
	if n > f.opts.MaxSize {
		return n, fmt.Errorf("larger than %d bytes", f.opts.MaxSize)
	}
	if got := h.Sum(nil); !equalBytes(got, want) {
		return n, &ChecksumError{Downloaded: hex.EncodeToString(got), Want: hex.EncodeToString(want)}
	}
	if err := tmp.Chmod(0o644); err != nil {
		return n, err
	}
	if err := tmp.Close(); err != nil {
		return n, err
	}
	return n, os.Rename(tmp.Name(), dst)
}

// verifyFile reports whether path holds bytes with sha256 want. A file with
// other bytes is removed; a missing file is not an error.
func (f *Fetcher) verifyFile(path string, want []byte) (int64, bool, error) {
	file, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer file.Close()
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err != nil {
		return 0, false, err
	}
	if got := h.Sum(nil); !equalBytes(got, want) {
		f.log.Printf("removing corrupt cache entry %s (sha256 %x)", path, got)
		if err := os.Remove(path); err != nil {
			return 0, false, err
		}
		return 0, false, nil
	}
	return n, true, nil
}

// cacheKey names a crate in the store: the hex sha2-256 multihash of its
// checksum ("1220" followed by the checksum in hex).
func cacheKey(sum []byte) string {
	mh, err := multihash.Encode(sum, multihash.SHA2_256)
	if err != nil { // only for a digest of the wrong length, which parseChecksum rules out
		return hex.EncodeToString(sum)
	}
	return multihash.Multihash(mh).HexString()
}

// parseChecksum decodes a lock checksum: 64 lowercase hex digits.
func parseChecksum(s string) ([]byte, error) {
	if s == "" {
		return nil, ErrNoChecksum
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size || strings.ToLower(s) != s {
		return nil, fmt.Errorf("%w: %q", ErrNoChecksum, s)
	}
	return b, nil
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }
