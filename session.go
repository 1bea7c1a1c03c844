package cargohash

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/fetch/git"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/lockfile"
	"github.com/cargohash/cargohash/vendortree"
)

// Options configure a Session.
type Options struct {
	// Fetch configures the registry downloader (cache, mirrors, retries,
	// proxies). Its Jobs is also the bound on concurrent git fetches.
	Fetch fetch.Options
	// GitCacheDir holds the bare repositories of git sources; "" fetches
	// into a temporary directory each time.
	GitCacheDir string
	// GitJobs bounds how many submodules of one repository are fetched at
	// once (git.Fetcher.Jobs); 0 means 4.
	GitJobs int
	// Log receives warnings and git's progress lines; nil discards them.
	Log io.Writer
}

// Session fetches what locks name. Close it when done.
type Session struct {
	crates *fetch.Fetcher
	git    *git.Fetcher
	jobs   int
	log    io.Writer
	// cacheDir is the download cache ("" without one): Prefetch and
	// Staging remember the locks they hash under it (see KnownLock).
	cacheDir string
}

// Open starts a session.
func Open(opts Options) (*Session, error) {
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	gitJobs := opts.GitJobs
	if gitJobs <= 0 {
		gitJobs = 4
	}
	g := &git.Fetcher{CacheDir: opts.GitCacheDir, Log: log, Offline: opts.Fetch.Offline, Jobs: gitJobs}
	if opts.Fetch.GitReadFile == nil {
		opts.Fetch.GitReadFile = g.ReadFile
	}
	if opts.Fetch.Log == nil {
		opts.Fetch.Log = log
	}
	if opts.Fetch.UserAgent == "" {
		opts.Fetch.UserAgent = "cargohash/" + Version
	}
	f, err := fetch.New(opts.Fetch)
	if err != nil {
		return nil, err
	}
	jobs := opts.Fetch.Jobs
	if jobs <= 0 {
		jobs = fetch.DefaultJobs
	}
	s := &Session{crates: f, git: g, jobs: jobs, log: log}
	if !opts.Fetch.NoCache {
		s.cacheDir = opts.Fetch.CacheDir
	}
	return s, nil
}

// Close releases the session's temporary files.
func (s *Session) Close() error { return s.crates.Close() }

// Crate is a registry crate fetched and verified.
type Crate struct {
	lockfile.Package
	File string // the verified .crate file (in the cache: read only)
	Size int64
	// unread is, for a cached crate taken without reading it, the sha256
	// its bytes must have: whoever reads File checks it as it reads (see
	// copyChecked). nil once File is verified.
	unread []byte
}

// Tarball is where the crate lives in a staging tree:
// tarballs/NAME-VERSION.tar.gz.
func (c Crate) Tarball() string { return vendortree.StagingTarball(c.Name, c.Version) }

// GitTree is one commit of a git source, checked out.
type GitTree struct {
	URL      string
	Commit   string
	Dir      string             // the checkout, .git directories removed
	Packages []lockfile.Package // the lock's crates from this commit
}

// Fetched is everything a lock names, on disk.
type Fetched struct {
	Lock   *lockfile.File
	Crates []Crate   // sorted by Tarball()
	Git    []GitTree // sorted by Commit
	Bytes  int64     // total size of the crate files
}

// Fetch downloads and verifies every registry crate of lock and checks out
// every distinct git commit under gitDir/COMMIT (gitDir must be empty or not
// exist). Crates and repositories are fetched concurrently, at most Jobs at
// a time (git sources at most maxGitFetches), the repositories first; the
// first failure cancels the rest.
func (s *Session) Fetch(ctx context.Context, lock *lockfile.File, gitDir string) (*Fetched, error) {
	return s.fetch(ctx, lock, gitDir, nil)
}

// maxGitFetches bounds the git sources fetched at once: each is a few git
// processes, not a stream.
const maxGitFetches = 16

// fetch is Fetch, telling arrived (if not nil) what is on disk as it
// arrives.
func (s *Session) fetch(ctx context.Context, lock *lockfile.File, gitDir string, arrived *arrivals) (*Fetched, error) {
	out := &Fetched{Lock: lock}
	byTarball := map[string]lockfile.Package{}
	trees := map[string]*GitTree{}
	for _, p := range lock.Fetchable() {
		switch p.Source.Kind {
		case lockfile.Registry, lockfile.Sparse:
			if p.Checksum == "" {
				return nil, &lockfile.Error{File: lock.Path, Line: p.Line, Package: p.ID(),
					Err: fmt.Errorf("%w: a registry crate cannot be verified without one", fetch.ErrNoChecksum)}
			}
			c := Crate{Package: p}
			if prev, dup := byTarball[c.Tarball()]; dup {
				return nil, fmt.Errorf("%s: %s comes from two registries (%s and %s): a staging tree has one %s", lock.Path, p.ID(), prev.Source.Raw, p.Source.Raw, c.Tarball())
			}
			byTarball[c.Tarball()] = p
			out.Crates = append(out.Crates, c)
		case lockfile.Git:
			t := trees[p.Source.Commit]
			if t == nil {
				t = &GitTree{URL: p.Source.URL, Commit: p.Source.Commit, Dir: filepath.Join(gitDir, p.Source.Commit)}
				trees[p.Source.Commit] = t
			}
			t.Packages = append(t.Packages, p)
		}
	}
	for _, t := range trees {
		out.Git = append(out.Git, *t)
	}
	sort.Slice(out.Crates, func(i, j int) bool { return out.Crates[i].Tarball() < out.Crates[j].Tarball() })
	sort.Slice(out.Git, func(i, j int) bool { return out.Git[i].Commit < out.Git[j].Commit })

	arrived.plan(out)

	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(s.jobs)
	gitSlots := make(chan struct{}, maxGitFetches)
	for i := range out.Git {
		t := &out.Git[i]
		g.Go(func() error {
			select {
			case gitSlots <- struct{}{}:
				defer func() { <-gitSlots }()
			case <-ctx.Done():
				return ctx.Err()
			}
			if err := s.git.Checkout(ctx, t.URL, t.Commit, t.Dir); err != nil {
				return fmt.Errorf("%s (git dependency of %s): %w", t.Packages[0].ID(), lock.Path, err)
			}
			arrived.gitTree(i)
			return nil
		})
	}
	for i := range out.Crates {
		c := &out.Crates[i]
		g.Go(func() error {
			if arrived.checksAsRead() {
				if path, size, want, ok := s.crates.Cached(c.Package); ok {
					c.File, c.Size, c.unread = path, size, want
					arrived.crate(i)
					return nil
				}
			}
			path, err := s.crates.Crate(ctx, c.Package)
			if err != nil {
				return err
			}
			fi, err := os.Stat(path)
			if err != nil {
				return err
			}
			c.File, c.Size = path, fi.Size()
			arrived.crate(i)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, c := range out.Crates {
		out.Bytes += c.Size
	}
	return out, nil
}

// OutputHashes fetches only the git sources of lock and returns importCargoLock's
// outputHashes (see Fetched.OutputHashes).
func (s *Session) OutputHashes(ctx context.Context, lock *lockfile.File) (map[string]nixhash.Hash, error) {
	return s.outputHashes(ctx, lock, nil)
}

// outputHashes is OutputHashes; inspect, if set, sees the checkouts before
// they are hashed and removed.
func (s *Session) outputHashes(ctx context.Context, lock *lockfile.File, inspect func(*Fetched)) (map[string]nixhash.Hash, error) {
	gitOnly := *lock.Lockfile
	gitOnly.Packages = nil
	for _, p := range lock.Packages {
		if p.Source.Kind == lockfile.Git {
			gitOnly.Packages = append(gitOnly.Packages, p)
		}
	}
	gitDir, err := os.MkdirTemp("", "cargohash-git-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(gitDir)
	f, err := s.Fetch(ctx, &lockfile.File{Lockfile: &gitOnly, Path: lock.Path, Data: lock.Data, Mode: lock.Mode}, gitDir)
	if err != nil {
		return nil, err
	}
	if inspect != nil {
		inspect(f)
	}
	return f.OutputHashes(ctx)
}
