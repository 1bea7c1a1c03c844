package cargohash

import (
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/cargohash/cargohash/fetch/forge"
	"github.com/cargohash/cargohash/fetch/git"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/internal/redact"
	"github.com/cargohash/cargohash/lockfile"
	"github.com/cargohash/cargohash/vendortree"
)

// ErrNoLock: the fetched source has no Cargo.lock where one was looked for.
var ErrNoLock = errors.New("no Cargo.lock")

// SrcOptions say what Src fetches and hashes besides the source.
type SrcOptions struct {
	// Ref is the tag, branch or commit of a repository source.
	Ref string
	// Submodules fetches a forge repository with git, submodules included
	// (fetchgit's tree), instead of its archive.
	Submodules bool
	// CargoRoot is buildRustPackage's cargoRoot: the directory of the
	// source that holds the Cargo.lock ("" is the top).
	CargoRoot string
	// Patches are cargoPatches, applied in order with `patch -p1` to the
	// fetched source before its lock is read.
	Patches []string
	// ImportCargoLock asks for importCargoLock's outputHashes instead of
	// the cargoHash.
	ImportCargoLock bool
	// MaxSize bounds what an archive unpacks to (0:
	// vendortree.MaxArchiveSize).
	MaxSize int64
	// Rewrite, if set, maps every forge URL (archive and git) before it
	// is fetched: tests serve GitHub and friends from loopback.
	Rewrite func(string) string
}

// SrcArg is one argument of the fetcher call; Value is a string or a bool.
type SrcArg struct {
	Name  string
	Value any
}

// SrcResult is a source's fetcher call and the hashes of its lock.
type SrcResult struct {
	// Fetcher is the nixpkgs fetcher (fetchzip, fetchFromGitHub, …);
	// "" for a local directory, which has no source hash.
	Fetcher string
	// Args are the fetcher's arguments, "hash" last.
	Args []SrcArg
	// Hash is the source's hash as the fetcher pins it.
	Hash nixhash.Hash
	// LockFile is the lock's path inside the source ("Cargo.lock", or
	// under CargoRoot).
	LockFile string
	// Cargo is the prefetch result of the lock: CargoHash and
	// OutputHashes, or only OutputHashes with ImportCargoLock.
	Cargo *Result
}

var crateRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:crate:([A-Za-z0-9_-]+)@([0-9A-Za-z.+-]+)|https://crates\.io/(?:crates|api/v1/crates)/([A-Za-z0-9_-]+)/([0-9A-Za-z.+-]+)(?:/download)?/?)$`)
})

// Src fetches the source that src names — an archive URL, a forge
// repository with opt.Ref, a git URL with opt.Ref, crate:NAME@VERSION or a
// local directory — into a temporary directory, hashes it as its nixpkgs
// fetcher does, applies opt.Patches and returns that with the hashes of the
// Cargo.lock inside. Portability warnings go to the session's log.
func (s *Session) Src(ctx context.Context, src string, opt SrcOptions) (*SrcResult, error) {
	if opt.CargoRoot != "" && !filepath.IsLocal(opt.CargoRoot) {
		return nil, fmt.Errorf("cargo root %q: not a relative path inside the source", opt.CargoRoot)
	}
	work, err := os.MkdirTemp("", "cargohash-src-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	rewrite := opt.Rewrite
	if rewrite == nil {
		rewrite = func(u string) string { return u }
	}

	res := &SrcResult{}
	var tree string // the source as the fetcher's $out
	if fi, err := os.Stat(src); err == nil && fi.IsDir() {
		if opt.Ref != "" {
			return nil, fmt.Errorf("%s: a local directory takes no REF", src)
		}
		tree = src
		if len(opt.Patches) > 0 { // never patch the user's files
			tree = filepath.Join(work, "src")
			if err := os.CopyFS(tree, os.DirFS(src)); err != nil {
				return nil, fmt.Errorf("copying %s to patch it: %w", src, err)
			}
		}
	} else if m := crateRE().FindStringSubmatch(src); m != nil {
		name, version := m[1]+m[3], m[2]+m[4]
		if opt.Ref != "" {
			return nil, fmt.Errorf("%s: a crate takes no REF", src)
		}
		source, err := lockfile.ParseSource(lockfile.CratesIORegistry)
		if err != nil {
			return nil, err
		}
		u, err := s.crates.URL(ctx, lockfile.Package{Name: name, Version: version, Source: source})
		if err != nil {
			return nil, err
		}
		if tree, err = s.fetchArchive(ctx, u, work, opt, res); err != nil {
			return nil, fmt.Errorf("%s@%s: %w", name, version, err)
		}
		if len(res.Args) > 0 { // stripRoot = false: not a crate
			return nil, fmt.Errorf("%s@%s: the .crate has no single top directory", name, version)
		}
		res.Fetcher = "fetchCrate"
		res.Args = []SrcArg{{"pname", name}, {"version", version}}
	} else if repo, ok := forge.Parse(src); ok {
		if opt.Ref == "" {
			opt.Ref = repo.Ref // https://github.com/o/r/tree/v1.0
		}
		if opt.Ref == "" {
			return nil, fmt.Errorf("%s: give a REF (tag, branch or commit)", src)
		}
		commit, kind, err := s.git.Resolve(ctx, rewrite(repo.GitURL()), opt.Ref)
		if err != nil {
			return nil, err
		}
		res.Fetcher = repo.Fetcher()
		for _, a := range repo.Args() {
			res.Args = append(res.Args, SrcArg{a[0], a[1]})
		}
		if kind == git.Tag {
			res.Args = append(res.Args, SrcArg{"tag", opt.Ref})
		} else {
			res.Args = append(res.Args, SrcArg{"rev", commit})
		}
		if opt.Submodules {
			res.Args = append(res.Args, SrcArg{"fetchSubmodules", true})
			tree = filepath.Join(work, "git")
			if err := s.git.Checkout(ctx, rewrite(repo.GitURL()), commit, tree); err != nil {
				return nil, err
			}
		} else {
			rev := commit
			if kind == git.Tag {
				rev = opt.Ref
			}
			var a SrcResult
			if tree, err = s.fetchArchive(ctx, rewrite(repo.ArchiveURL(rev, kind == git.Tag)), work, opt, &a); err != nil {
				return nil, err
			}
			if len(a.Args) > 1 {
				return nil, fmt.Errorf("%s: the archive of %s has no single top directory", src, opt.Ref)
			}
		}
	} else if opt.Ref != "" {
		commit, kind, err := s.git.Resolve(ctx, src, opt.Ref)
		if err != nil {
			return nil, err
		}
		res.Fetcher = "fetchgit"
		res.Args = []SrcArg{{"url", src}}
		if kind == git.Tag {
			res.Args = append(res.Args, SrcArg{"tag", opt.Ref})
		} else {
			res.Args = append(res.Args, SrcArg{"rev", commit})
		}
		tree = filepath.Join(work, "git")
		if err := s.git.Checkout(ctx, src, commit, tree); err != nil {
			return nil, err
		}
	} else if u, err := url.Parse(src); err == nil && (u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "file") {
		res.Fetcher = "fetchzip"
		if tree, err = s.fetchArchive(ctx, src, work, opt, res); err != nil {
			return nil, err
		}
		res.Args = append([]SrcArg{{"url", src}}, res.Args...)
	} else {
		return nil, fmt.Errorf("%s: not a directory, archive URL, repository or crate:NAME@VERSION (a git URL needs a REF)", src)
	}

	if res.Fetcher != "" {
		if res.Hash, err = HashPath(ctx, tree, nixhash.SHA256); err != nil {
			return nil, err
		}
		res.Args = append(res.Args, SrcArg{"hash", res.Hash.String()})
		s.warnCollisions(tree, "source "+src)
	}
	if len(opt.Patches) > 0 {
		if tree == src { // a fetched tree is ours; a local one was copied above
			return nil, errors.New("internal error: patching the user's directory")
		}
		for _, p := range opt.Patches {
			if err := applyPatch(ctx, tree, p); err != nil {
				return nil, err
			}
		}
	}

	if fi, err := os.Lstat(tree); err == nil && fi.Mode()&fs.ModeSymlink != 0 && res.Fetcher != "" {
		return nil, fmt.Errorf("%s: the source is a symlink, not a tree: %w", src, ErrNoLock)
	}
	res.LockFile = filepath.ToSlash(filepath.Join(opt.CargoRoot, "Cargo.lock"))
	lockPath := filepath.Join(tree, opt.CargoRoot, "Cargo.lock")
	if _, err := os.Stat(lockPath); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w in %s: nixpkgs packages such a source with a Cargo.lock generated by `cargo generate-lockfile` and committed beside the package (cargoLock.lockFile = ./Cargo.lock; and postPatch = \"ln -s ${./Cargo.lock} Cargo.lock\";)", src, ErrNoLock, lockDirName(opt.CargoRoot))
	}
	if real, err := filepath.EvalSymlinks(lockPath); err != nil {
		return nil, err
	} else if base, err := filepath.EvalSymlinks(tree); err != nil {
		return nil, err
	} else if rel, err := filepath.Rel(base, real); err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%s: %s leads outside the source", src, res.LockFile)
	}
	lock, err := lockfile.Load(lockPath)
	if err != nil {
		return nil, err
	}
	warnGit := func(f *Fetched) {
		for _, t := range f.Git {
			s.warnCollisions(t.Dir, "git dependency "+t.Packages[0].ID())
		}
	}
	if opt.ImportCargoLock {
		out, err := s.outputHashes(ctx, lock, warnGit)
		if err != nil {
			return nil, err
		}
		res.Cargo = &Result{OutputHashes: out}
		return res, nil
	}
	if res.Cargo, err = s.prefetch(ctx, lock, warnGit); err != nil {
		return nil, err
	}
	return res, nil
}

func lockDirName(dir string) string {
	if dir == "" {
		return "its top directory"
	}
	return dir
}

// fetchArchive downloads the archive at u into work and unpacks it, and
// returns the tree fetchzip would hash: the single top-level directory, or,
// when there is none, the whole tree (fetchzip's stripRoot = false, which is
// added to res.Args).
func (s *Session) fetchArchive(ctx context.Context, u, work string, opt SrcOptions, res *SrcResult) (string, error) {
	file := filepath.Join(work, "download")
	if _, err := s.crates.Download(ctx, u, file, 0); err != nil {
		return "", err
	}
	dir := filepath.Join(work, "unpacked")
	if err := vendortree.UnpackArchive(ctx, file, dir, opt.MaxSize); err != nil {
		return "", fmt.Errorf("unpacking %s: %w", redact.URL(u), err)
	}
	if err := os.Remove(file); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	if len(entries) == 1 {
		// fetchzip: a single directory becomes $out; a single file is
		// moved into an $out directory ([ -f ] follows symlinks).
		top := filepath.Join(dir, entries[0].Name())
		if fi, err := os.Stat(top); err == nil && fi.Mode().IsRegular() {
			return dir, nil
		}
		return top, nil
	}
	res.Args = append(res.Args, SrcArg{"stripRoot", false})
	return dir, nil
}

// applyPatch applies one cargoPatches file as nixpkgs' patch phase does:
// `patch -p1` reading the patch on stdin, decompressed first when its name
// ends in .gz, .bz2, .xz or .lzma. It never asks questions.
func applyPatch(ctx context.Context, tree, patch string) error {
	f, err := os.Open(patch)
	if err != nil {
		return fmt.Errorf("patch %s: %w", patch, err)
	}
	defer f.Close()
	var in io.Reader = f
	switch filepath.Ext(patch) {
	case ".gz":
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("patch %s: %w", patch, err)
		}
		defer zr.Close()
		in = zr
	case ".bz2":
		in = bzip2.NewReader(f)
	case ".xz":
		if in, err = xz.NewReader(f); err != nil {
			return fmt.Errorf("patch %s: %w", patch, err)
		}
	case ".lzma":
		if in, err = lzma.NewReader(f); err != nil {
			return fmt.Errorf("patch %s: %w", patch, err)
		}
	}
	cmd := exec.CommandContext(ctx, "patch", "-p1", "-f", "-s")
	cmd.Dir = tree
	cmd.Stdin = in
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; ")
		if errors.Is(err, exec.ErrNotFound) {
			msg = "GNU patch is not installed"
		}
		return fmt.Errorf("patch %s: %s (%w)", patch, msg, err)
	}
	return nil
}

// warnCollisions logs the names of the tree at dir that collide on macOS.
func (s *Session) warnCollisions(dir, what string) {
	names, err := Collisions(os.DirFS(dir))
	if err != nil {
		fmt.Fprintf(s.log, "warning: %s: checking names: %v\n", what, err)
		return
	}
	for _, n := range names {
		fmt.Fprintf(s.log, "warning: %s: %s are one name on a case-insensitive or Unicode-normalising file system: Nix on macOS computes another hash for this tree (nixpkgs #358093, #274304)\n", what, n)
	}
}
