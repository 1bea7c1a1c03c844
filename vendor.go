package cargohash

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/hash/gnutar"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/internal/publish"
	"github.com/cargohash/cargohash/lockfile"
	"github.com/cargohash/cargohash/vendortree"
)

// Vendor writes the vendor tree of lock to out in the layout opts names,
// from the fetched .crate files and git checkouts (in a temporary directory
// beside out); vendortree builds it under a temporary name and renames it
// into place, so nothing is left on error. An out that vendortree.Dest
// refuses is refused before fetching.
func (s *Session) Vendor(ctx context.Context, lock *lockfile.File, out string, opts vendortree.Options) error {
	opts.Keep = append(opts.Keep[:len(opts.Keep):len(opts.Keep)], lock.Path)
	if err := publish.CheckDir(out, vendortree.Dest(opts.Layout, opts.Keep...)); err != nil {
		return err // before fetching anything
	}
	tmp, release, err := publish.TempDir(out, "git")
	if err != nil {
		return err
	}
	defer release()
	defer os.RemoveAll(tmp)
	f, err := s.fetch(ctx, lock, tmp, nil, fetch.Packed)
	if err != nil {
		return err
	}
	if opts.Log == nil {
		opts.Log = s.log
	}
	return vendortree.Write(ctx, f.staged(tmp), out, opts)
}

// staged describes the fetched files as vendortree's input; git checkouts
// are in gitDir.
func (f *Fetched) staged(gitDir string) vendortree.Staged {
	crates := map[string]Crate{}
	for _, c := range f.Crates {
		crates[c.Tarball()] = c
	}
	return vendortree.Staged{
		Lock: f.Lock,
		Tarball: func(p lockfile.Package) string {
			c, ok := crates[Crate{Package: p}.Tarball()]
			switch {
			case !ok:
				return filepath.Join(gitDir, "not-fetched", Crate{Package: p}.Tarball())
			case c.offset != 0:
				return fmt.Sprintf("%s (at %d)", c.File, c.offset) // in a pack
			}
			return c.File
		},
		Open: func(p lockfile.Package) (io.ReadCloser, error) {
			if c, ok := crates[Crate{Package: p}.Tarball()]; ok {
				return c.open()
			}
			return nil, fmt.Errorf("%s: %w", p.ID(), fs.ErrNotExist)
		},
		Checkout: func(commit string) string { return filepath.Join(gitDir, commit) },
	}
}

// Compression is a vendor tarball's compression, chosen by file suffix.
type Compression int

// The compressions of SPEC §8.
const (
	Plain Compression = iota // .tar
	Gzip                     // .tar.gz, .tgz
	Zstd                     // .tar.zst, .tzst
)

// CompressionFor picks the compression from out's suffix.
func CompressionFor(out string) (Compression, error) {
	switch {
	case strings.HasSuffix(out, ".tar.gz"), strings.HasSuffix(out, ".tgz"):
		return Gzip, nil
	case strings.HasSuffix(out, ".tar.zst"), strings.HasSuffix(out, ".tzst"):
		return Zstd, nil
	case strings.HasSuffix(out, ".tar"):
		return Plain, nil
	}
	return 0, fmt.Errorf("%s: unknown tarball suffix (want .tar.gz, .tar.zst or .tar)", out)
}

// Fixed compressor settings: the same tree gives the same bytes on every
// machine and run (a compressor upgrade may still change them; the
// uncompressed stream is the long-term identity).
const (
	gzipLevel = gzip.DefaultCompression // 6
	zstdLevel = zstd.SpeedDefault       // zstd level 3
)

// Tarball writes the deterministic vendor tarball of lock (SPEC §8) to out:
// the cargo-layout vendor tree plus Cargo.lock and .cargo/config.toml under
// NAME-vendor/, as `tar --format=gnu --sort=name --owner=0 --group=0
// --numeric-owner --mtime=@1` writes it, compressed as out's suffix says. It
// returns the sha256 of the file. out is written under a temporary name and
// renamed when complete.
func (s *Session) Tarball(ctx context.Context, lock *lockfile.File, out, name string) (nixhash.Hash, error) {
	comp, err := CompressionFor(out)
	if err != nil {
		return nixhash.Hash{}, err
	}
	if err := publish.CheckFile(out, TarballDest(lock)); err != nil {
		return nixhash.Hash{}, err // before fetching anything
	}
	// The tree is never written: vendortree.FS builds each crate in
	// memory (or, if huge, in tmp) as the archive walk reaches it, reading
	// the fetched .crate files and git checkouts (in tmp) directly.
	tmp, release, err := publish.TempDir(out, "tree")
	if err != nil {
		return nixhash.Hash{}, err
	}
	defer release()
	defer os.RemoveAll(tmp)
	gitDir := filepath.Join(tmp, "git")
	f, err := s.fetch(ctx, lock, gitDir, nil, fetch.Packed)
	if err != nil {
		return nixhash.Hash{}, err
	}
	fsys, err := vendortree.NewFS(ctx, f.staged(gitDir), vendortree.Options{Layout: vendortree.Cargo, SpillDir: tmp, Log: s.log})
	if err != nil {
		return nixhash.Hash{}, err
	}
	defer fsys.Close()
	if err := fsys.AddFile("Cargo.lock", lock.Data, 0o644); err != nil {
		return nixhash.Hash{}, err
	}
	config := vendortree.CargoSourceConfig(lock.Lockfile, vendortree.VendorPlaceholder)
	if err := fsys.AddFile(".cargo/config.toml", []byte(config), 0o644); err != nil {
		return nixhash.Hash{}, err
	}
	return writeTarball(ctx, fsys, name+"-vendor", out, comp, TarballDest(lock))
}

// TarballDest is where a tarball of lock may be written: a new path, or a
// vendor tarball as cargohash writes (a vendor tree with its Cargo.lock),
// which is replaced atomically; never the lock, and no other file:
// cargohash never overwrites a file it did not write, even where tar would.
func TarballDest(lock *lockfile.File) publish.Options {
	return publish.Options{Keep: []string{lock.Path}, What: "a vendor tarball", Own: ownTarball}
}

// ownTarball is TarballDest's Own.
func ownTarball(path string) (string, error) {
	v, err := vendortree.Open(context.Background(), path)
	if err != nil || v.Kind == vendortree.Staging || v.LockData == nil {
		return "a file that is not a vendor tarball", nil
	}
	return "", nil
}

// writeTarball archives fsys as top/ to out (atomically, as dest allows)
// and returns its sha256.
func writeTarball(ctx context.Context, fsys fs.FS, top, out string, comp Compression, dest publish.Options) (nixhash.Hash, error) {
	sum := sha256.New()
	err := publish.File(ctx, out, 0o644, dest, func(f io.Writer) (err error) {
		fileW := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
		var cw io.WriteCloser = nopCloser{fileW}
		switch comp {
		case Gzip:
			if cw, err = newGzip(fileW, runtime.GOMAXPROCS(0)); err != nil {
				return err
			}
		case Zstd:
			// One encoder goroutine: its output must not depend on the core count.
			if cw, err = zstd.NewWriter(fileW, zstd.WithEncoderLevel(zstdLevel), zstd.WithEncoderConcurrency(1)); err != nil {
				return err
			}
		}
		tarBuf := bufio.NewWriterSize(cw, 1<<20)
		tw := gnutar.NewWriter(tarBuf)
		if err := gnutar.WriteFS(ctx, tw, fsys, top); err != nil {
			cw.Close() // stops pgzip's goroutines
			return err
		}
		for _, step := range []func() error{tw.Close, tarBuf.Flush, cw.Close, fileW.Flush} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nixhash.Hash{}, err
	}
	return nixhash.Sum(nixhash.SHA256, sum), nil
}

// newGzip returns the tarball's gzip compressor: pgzip, which deflates
// fixed 1 MiB blocks (each primed with the previous block's last 32 KiB) on
// several cores. Its output depends on the level and block size only, not on
// how many blocks are compressed at once (TestGzipIndependentOfCores); the
// header has no name and mtime 0 (pgzip would write the zero time.Time's
// Unix seconds, truncated, as the mtime).
func newGzip(w io.Writer, parallel int) (io.WriteCloser, error) {
	zw, err := pgzip.NewWriterLevel(w, gzipLevel)
	if err != nil {
		return nil, err
	}
	zw.Header.ModTime = time.Unix(0, 0)
	return zw, zw.SetConcurrency(gzipBlock, max(parallel, 1))
}

const gzipBlock = 1 << 20

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
