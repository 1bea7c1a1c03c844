package cargohash

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/cargohash/cargohash/hash/nar"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/internal/publish"
	"github.com/cargohash/cargohash/lockfile"
	"github.com/cargohash/cargohash/vendortree"
)

// Result is what prefetch reports.
type Result struct {
	CargoHash    nixhash.Hash            `json:"cargoHash"`
	OutputHashes map[string]nixhash.Hash `json:"outputHashes"` // importCargoLock's, "NAME-VERSION" → NAR hash of its commit's tree
	Crates       int                     `json:"crates"`       // registry crates
	GitSources   int                     `json:"gitSources"`   // distinct git commits
	Bytes        int64                   `json:"bytes"`        // size of the crate files
}

// resultHash is the cargoHash of a command's result: zero if it failed.
func resultHash(res *Result, err error) nixhash.Hash {
	if err != nil || res == nil {
		return nixhash.Hash{}
	}
	return res.CargoHash
}

// Prefetch fetches what lock names and returns the fetchCargoVendor
// cargoHash: the sha256 NAR hash of the staging tree (SPEC §3), computed from
// the fetched files without writing the tree, while they arrive. Git
// checkouts live in a temporary directory removed before Prefetch returns.
func (s *Session) Prefetch(ctx context.Context, lock *lockfile.File) (*Result, error) {
	return s.prefetch(ctx, lock, nil)
}

// prefetch is Prefetch; inspect, if set, sees the fetched files (git
// checkouts included) before they are removed.
func (s *Session) prefetch(ctx context.Context, lock *lockfile.File, inspect func(*Fetched)) (res *Result, err error) {
	remember := s.rememberLock(lock)
	defer func() { remember(resultHash(res, err)) }()
	res, err = s.prefetchOnce(ctx, lock, inspect, true)
	if errors.Is(err, errCacheChanged) {
		// A cached crate is not what was stored: run again, verifying each
		// cached crate before it is used, as Crate does; the damaged entry
		// is logged there and fetched again. Its bytes never reach a result.
		res, err = s.prefetchOnce(ctx, lock, inspect, false)
	}
	return res, err
}

// prefetchOnce is prefetch; with checkAsRead, cached crates are verified as
// they are hashed, and a mismatch is errCacheChanged.
func (s *Session) prefetchOnce(ctx context.Context, lock *lockfile.File, inspect func(*Fetched), checkAsRead bool) (*Result, error) {
	gitDir, err := os.MkdirTemp("", "cargohash-git-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(gitDir)
	arrived := newArrivals(checkAsRead)
	f, h, err := s.fetchHashing(ctx, lock, gitDir, arrived)
	if err != nil {
		return nil, err
	}
	if inspect != nil {
		inspect(f)
	}
	return f.resultOf(ctx, h)
}

// fetchHashing fetches lock (git checkouts under gitDir) and hashes its
// staging NAR as the files arrive, telling arrived.
func (s *Session) fetchHashing(ctx context.Context, lock *lockfile.File, gitDir string, arrived *arrivals) (*Fetched, hash.Hash, error) {
	h := nixhash.SHA256.New()
	var f *Fetched
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		f, err = s.fetch(gctx, lock, gitDir, arrived, arrived.handover())
		return err
	})
	g.Go(func() error {
		planned, err := arrived.waitPlan(gctx)
		if err != nil {
			return err
		}
		return planned.writeStagingNAR(gctx, h, arrived)
	})
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return f, h, nil
}

// resultOf is the Result of f, whose staging NAR h has hashed.
func (f *Fetched) resultOf(ctx context.Context, h hash.Hash) (*Result, error) {
	out, err := f.OutputHashes(ctx)
	if err != nil {
		return nil, err
	}
	return &Result{
		CargoHash:    nixhash.Sum(nixhash.SHA256, h),
		OutputHashes: out,
		Crates:       len(f.Crates),
		GitSources:   len(f.Git),
		Bytes:        f.Bytes,
	}, nil
}

// OutputHashes returns importCargoLock's outputHashes: for every git crate,
// "NAME-VERSION" → the sha256 NAR hash of its commit's tree (crates of one
// commit share it).
func (f *Fetched) OutputHashes(ctx context.Context) (map[string]nixhash.Hash, error) {
	out := map[string]nixhash.Hash{}
	for _, t := range f.Git {
		h, err := HashPath(ctx, t.Dir, nixhash.SHA256)
		if err != nil {
			return nil, err
		}
		for _, p := range t.Packages {
			out[p.Name+"-"+p.Version] = h
		}
	}
	return out, nil
}

// WriteStagingNAR writes the NAR serialisation of the staging tree:
//
//	Cargo.lock                    the lock's bytes, executable if the file is
//	git/COMMIT/…                  each checkout (only if there are git crates)
//	tarballs/NAME-VERSION.tar.gz  each .crate file as downloaded (only if there are registry crates)
func (f *Fetched) WriteStagingNAR(ctx context.Context, w io.Writer) error {
	return f.writeStagingNAR(ctx, w, nil)
}

// writeStagingNAR is WriteStagingNAR of a Fetch in progress: each entry is
// written once arrived says it is on disk.
func (f *Fetched) writeStagingNAR(ctx context.Context, w io.Writer, arrived *arrivals) error {
	// The NAR writer's writes are many and small: a hash takes them as
	// they are, anything else through a buffer. Buffering for the hash
	// too copied every byte once more, in the tail of a cold prefetch
	// (what arrived last, and all after it, is hashed once it has).
	out, bw := w, (*bufio.Writer)(nil)
	if _, isHash := w.(hash.Hash); !isHash {
		bw = bufio.NewWriterSize(w, 256<<10)
		out = bw
	}
	nw := nar.NewWriter(out)
	nw.WriteHeader(&nar.Header{Mode: fs.ModeDir})
	nw.WriteHeader(&nar.Header{Path: "Cargo.lock", Mode: f.Lock.Mode, Size: int64(len(f.Lock.Data))})
	nw.Write(f.Lock.Data)
	if len(f.Git) > 0 {
		if err := nw.WriteHeader(&nar.Header{Path: vendortree.StagingGit, Mode: fs.ModeDir}); err != nil {
			return err
		}
		for i := range f.Git {
			if err := arrived.waitGit(ctx, i); err != nil {
				return err
			}
			t := &f.Git[i]
			if err := nar.WritePath(ctx, nw, t.Dir, vendortree.StagingCheckout(t.Commit)); err != nil {
				return fmt.Errorf("git tree of %s: %w", t.Packages[0].ID(), err)
			}
		}
	}
	if len(f.Crates) > 0 {
		if err := nw.WriteHeader(&nar.Header{Path: vendortree.StagingTarballs, Mode: fs.ModeDir}); err != nil {
			return err
		}
		buf := make([]byte, 256<<10)
		var files lastFile
		defer files.close()
		tree := arrived.copyTo()
		if tree != "" {
			if err := os.Mkdir(filepath.Join(tree, vendortree.StagingTarballs), 0o755); err != nil {
				return err
			}
		}
		for i := range f.Crates {
			if err := arrived.waitCrate(ctx, i); err != nil {
				return err
			}
			c := &f.Crates[i]
			if err := nw.WriteHeader(&nar.Header{Path: c.Tarball(), Mode: 0o644, Size: c.Size}); err != nil {
				return err
			}
			copy := func(w io.Writer, c *Crate) error { return copyFileTo(w, c, &files, buf) }
			if c.unread != nil {
				copy = func(w io.Writer, c *Crate) error { return copyChecked(w, c, &files, buf) }
			}
			if err := copyTee(nw, tree, c, copy); err != nil {
				return fmt.Errorf("%s: %w", c.ID(), err)
			}
		}
	}
	if err := nw.Close(); err != nil {
		return err
	}
	if bw != nil {
		return bw.Flush()
	}
	return nil
}

// copyTee copies crate c with copy to w and, if tree is not "", to a new
// file at its place in the staging tree there.
func copyTee(w io.Writer, tree string, c *Crate, copy func(io.Writer, *Crate) error) error {
	if tree == "" {
		return copy(w, c)
	}
	out, err := os.OpenFile(filepath.Join(tree, filepath.FromSlash(c.Tarball())), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := copy(io.MultiWriter(w, out), c); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// lastFile keeps the file a crate was read from open for the next crate:
// those of a run's downloads and of a cache pack are regions of one file,
// which was opened once per crate before (three syscalls each). Only the
// last: crates in files of their own do not pile up open descriptors.
type lastFile struct {
	path string
	f    *os.File
}

// open returns a reader of crate c's bytes.
func (l *lastFile) open(c *Crate) (io.Reader, error) {
	if l.f == nil || l.path != c.File {
		l.close()
		f, err := c.file().OpenFile()
		if err != nil {
			return nil, err
		}
		l.path, l.f = c.File, f
	}
	return c.file().Section(l.f), nil
}

func (l *lastFile) close() {
	if l.f != nil {
		l.f.Close()
	}
	*l = lastFile{}
}

// copyFileTo copies crate c's bytes (Size at offset in File) to w through
// buf. Not through io.Copy, which (by os.File.WriteTo and the NAR writer's
// ReadFrom) took a new 32 KiB buffer for every crate: megabytes of fresh
// memory on a cold prefetch, each page of it a page fault.
func copyFileTo(w io.Writer, c *Crate, files *lastFile, buf []byte) error {
	r, err := files.open(c)
	if err != nil {
		return err
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, buf)
	if err == nil && n != c.Size {
		err = fmt.Errorf("%s changed size (%d bytes at %d, then %d)", c.File, c.Size, c.offset, n)
	}
	return err
}

// errCacheChanged is a cached crate that is no longer what was stored: other
// bytes, fewer, or none that can be read.
var errCacheChanged = errors.New("cached crate changed since it was stored")

// copyChecked copies crate c's bytes to w through buf, and checks that
// they have sha256 c.unread: the one read of a cached crate. Other bytes,
// fewer, or a file that cannot be read are errCacheChanged.
func copyChecked(w io.Writer, c *Crate, files *lastFile, buf []byte) error {
	r, err := files.open(c)
	if err != nil {
		return fmt.Errorf("%w: %v", errCacheChanged, err)
	}
	h := sha256.New()
	for left := c.Size; left > 0; {
		chunk := buf[:min(left, int64(len(buf)))]
		if _, err := io.ReadFull(r, chunk); err != nil {
			return fmt.Errorf("%w: %s: %v", errCacheChanged, c.File, err)
		}
		h.Write(chunk)
		if _, err := w.Write(chunk); err != nil {
			return err
		}
		left -= int64(len(chunk))
	}
	if got := h.Sum(nil); string(got) != string(c.unread) {
		return fmt.Errorf("%w: %s (sha256 %x)", errCacheChanged, c.File, got)
	}
	return nil
}

// Staging writes the staging tree of lock to out and returns its
// cargoHash. out is published as vendortree.StagingDest says: a new path,
// an empty directory or an earlier staging tree is replaced once the new
// tree is complete; anything else is refused before fetching. On error
// nothing is left.
func (s *Session) Staging(ctx context.Context, lock *lockfile.File, out string) (res *Result, err error) {
	remember := s.rememberLock(lock)
	defer func() { remember(resultHash(res, err)) }()
	err = publish.Dir(ctx, out, vendortree.StagingDest(lock.Path), func(tmp string) error {
		if err := writeFile(filepath.Join(tmp, "Cargo.lock"), lock.Data, lock.Mode); err != nil {
			return err
		}
		// Each crate is copied into the tree by the hasher, in the one
		// read that hashes it, while the rest still download.
		arrived := newArrivals(false)
		arrived.tree = tmp
		f, h, err := s.fetchHashing(ctx, lock, filepath.Join(tmp, vendortree.StagingGit), arrived)
		if err != nil {
			return err
		}
		res, err = f.resultOf(ctx, h)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	return os.Chmod(path, mode) // not masked by the umask
}
