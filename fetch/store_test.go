package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
)

// lockedBuffer is a log several goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStoreDamage damages a warm crate store in every shape and fetches
// again: the right bytes come back, the damage costs one fetch and one line
// on the log, and the store is whole afterwards.
func TestStoreDamage(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	data := fetchtest.Crate("serde", "1.0.197", map[string]string{"src/lib.rs": "pub fn f() {}\n"})
	pkg := reg.Add("serde", "1.0.197", data)
	key := "1220" + pkg.Checksum
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, crates, entry string)
		note   bool // a line on the log is expected
	}{
		{"flip-first", func(t *testing.T, _, e string) { reftest.FlipByte(t, e, 0) }, true},
		{"flip-middle", func(t *testing.T, _, e string) { reftest.FlipByte(t, e, int64(len(data)/2)) }, true},
		{"flip-last", func(t *testing.T, _, e string) { reftest.FlipByte(t, e, int64(len(data)-1)) }, true},
		{"truncated", func(t *testing.T, _, e string) { os.Truncate(e, int64(len(data)/2)) }, true},
		{"empty", func(t *testing.T, _, e string) { os.Truncate(e, 0) }, true},
		{"longer", func(t *testing.T, _, e string) { os.WriteFile(e, append(data[:len(data):len(data)], '\n'), 0o644) }, true},
		{"unreadable", func(t *testing.T, _, e string) { os.Chmod(e, 0) }, true},
		{"directory", func(t *testing.T, _, e string) { os.Remove(e); os.MkdirAll(filepath.Join(e, "sub"), 0o755) }, true},
		{"symlink", func(t *testing.T, _, e string) { os.Remove(e); os.Symlink("/dev/null", e) }, true},
		{"dangling-symlink", func(t *testing.T, _, e string) { os.Remove(e); os.Symlink("nowhere", e) }, true},
		{"fifo", func(t *testing.T, _, e string) {
			os.Remove(e)
			if err := syscall.Mkfifo(e, 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"stale-temp", func(t *testing.T, c, e string) { os.WriteFile(filepath.Join(c, "."+key+".tmp-123"), data[:10], 0o600) }, false},
		{"store-is-a-file", func(t *testing.T, c, _ string) { os.RemoveAll(c); os.WriteFile(c, []byte("x"), 0o644) }, true},
		{"store-is-a-dangling-symlink", func(t *testing.T, c, _ string) { os.RemoveAll(c); os.Symlink("nowhere", c) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "unreadable" && os.Geteuid() == 0 {
				t.Skip("root reads a file of mode 0")
			}
			cache := t.TempDir()
			newTestFetcher(t, Options{CacheDir: cache}).Crate(context.Background(), pkg)
			crates := filepath.Join(cache, "crates")
			entry := filepath.Join(crates, key)
			checkFile(t, entry, data)
			tc.damage(t, crates, entry)

			before := reg.Requests(reg.CratePath("serde", "1.0.197"))
			var log lockedBuffer
			f := newTestFetcher(t, Options{CacheDir: cache, Log: &log})
			path, err := f.Crate(context.Background(), pkg)
			if err != nil {
				t.Fatalf("%v\nlog:\n%s", err, log.String())
			}
			checkFile(t, path, data)
			notes := strings.Count(log.String(), "\n")
			if want := map[bool]int{true: 1, false: 0}[tc.note]; notes != want {
				t.Errorf("log has %d lines, want %d:\n%s", notes, want, log.String())
			}
			if n := reg.Requests(reg.CratePath("serde", "1.0.197")) - before; n > 1 {
				t.Errorf("%d requests, want at most 1", n)
			}
			// Whole again: offline, no note.
			log = lockedBuffer{}
			if _, err := newTestFetcher(t, Options{CacheDir: cache, Offline: true, Log: &log}).Crate(context.Background(), pkg); err != nil || log.String() != "" {
				t.Errorf("after the repair: %v, log %q", err, log.String())
			}
		})
	}
}

// TestStoreConcurrentRepair: many fetchers (as separate processes would:
// each its own Fetcher) find the same damaged entry at once; every one gets
// the right bytes.
func TestStoreConcurrentRepair(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	data := fetchtest.Crate("serde", "1.0.197", map[string]string{"src/lib.rs": "pub fn f() {}\n"})
	pkg := reg.Add("serde", "1.0.197", data)
	cache := t.TempDir()
	for round := range 5 {
		entry := filepath.Join(cache, "crates", "1220"+pkg.Checksum)
		if round > 0 {
			reftest.FlipByte(t, entry, int64(round*7))
		}
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Go(func() {
				f := newTestFetcher(t, Options{CacheDir: cache})
				path, err := f.Crate(context.Background(), pkg)
				if err == nil {
					var got []byte
					if got, err = os.ReadFile(path); err == nil && !bytes.Equal(got, data) {
						err = os.ErrInvalid
					}
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, fetcher %d: %v", round, i, err)
			}
		}
	}
}

// TestCopyBody copies bodies of every size around its two buffers, however
// the reader splits them, in as few writes as its 32 KiB buffer allows,
// and passes a reader's error on.
func TestCopyBody(t *testing.T) {
	for _, size := range []int{0, 1, 2<<10 - 1, 2 << 10, 2<<10 + 1, 34 << 10, 32<<10 + 2<<10 + 1, 300 << 10} {
		data := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		for name, wrap := range map[string]func(io.Reader) io.Reader{
			"whole":    func(r io.Reader) io.Reader { return r },
			"bytewise": iotest.OneByteReader,
			"halves":   iotest.HalfReader,
			"data+EOF": iotest.DataErrReader,
		} {
			var out bytes.Buffer
			w := &countingWriter{w: &out}
			n, err := copyBody(w, wrap(bytes.NewReader(data)))
			if err != nil || n != int64(size) || !bytes.Equal(out.Bytes(), data) {
				t.Errorf("%d bytes, %s: copied %d (%d bytes out), %v", size, name, n, out.Len(), err)
			}
			if want := (size + 32<<10 - 1) / (32 << 10); w.writes != want {
				t.Errorf("%d bytes, %s: %d writes, want %d", size, name, w.writes, want)
			}
		}
	}
	boom := errors.New("connection reset")
	for _, at := range []int{0, 100, 5000} {
		r := io.MultiReader(bytes.NewReader(make([]byte, at)), iotest.ErrReader(boom))
		if n, err := copyBody(io.Discard, r); !errors.Is(err, boom) || n != int64(at) {
			t.Errorf("error after %d bytes: copied %d, %v", at, n, err)
		}
	}
}

// countingWriter counts the writes it passes on.
type countingWriter struct {
	w      io.Writer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.writes++
	return c.w.Write(p)
}
