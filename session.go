package cargohash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/fetch/git"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/internal/redact"
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
	// Progress, if set, is told what Fetch does beyond the registry crates
	// (whose events are Fetch.Progress's). It may be called concurrently.
	Progress func(Event)
}

// EventKind says what an Event reports.
type EventKind int

const (
	// FetchStarted: the lock is valid and Fetch begins to fetch
	// Event.Crates registry crates and Event.GitSources git sources.
	FetchStarted EventKind = iota
	// GitStarted: the checkout of a git source (Event.Git) begins.
	GitStarted
	// GitDone: the checkout of Event.Git is complete.
	GitDone
	// FetchDone: everything the lock names is on disk; what follows is the
	// command's own work (hashing, writing, compressing).
	FetchDone
)

// Event is a progress report of a Session, for the command line's display.
type Event struct {
	Kind       EventKind
	Git        string // URL@COMMIT (redacted URL), for the git kinds
	Crates     int    // FetchStarted: registry crates to fetch
	GitSources int    // FetchStarted: git sources (distinct commits) to fetch
}

// Session fetches what locks name. Close it when done.
type Session struct {
	crates *fetch.Fetcher
	git    *git.Fetcher
	jobs   int
	log    io.Writer
	event  func(Event)
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
	g := &git.Fetcher{CacheDir: opts.GitCacheDir, Log: log, Offline: opts.Fetch.Offline, Jobs: gitJobs, StallTimeout: opts.Fetch.StallTimeout}
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
	s := &Session{crates: f, git: g, jobs: jobs, log: log, event: opts.Progress}
	if s.event == nil {
		s.event = func(Event) {}
	}
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
	// offset is where the crate's bytes start in File: not 0 for a crate
	// in a cache pack, which only the session's own commands ask for (see
	// fetch.Packed; Fetch keeps File the crate's alone).
	offset int64
	// unread is, for a cached crate taken without reading it, the sha256
	// its bytes must have: whoever reads File checks it as it reads (see
	// copyChecked). nil once File is verified.
	unread []byte
}

// open opens the crate's bytes.
func (c Crate) open() (io.ReadCloser, error) { return c.file().Open() }

// file is where the crate's bytes are.
func (c Crate) file() fetch.File { return fetch.File{Path: c.File, Offset: c.offset, Size: c.Size} }

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
	return s.fetch(ctx, lock, gitDir, nil, 0)
}

// maxGitFetches bounds the git sources fetched at once: each writes a
// tree of files, and one not fetched in process starts git processes.
const maxGitFetches = 16

// fetch is Fetch, taking the crates as how says (see fetch.Handover) and
// telling arrived (if not nil) what is on disk as it arrives.
func (s *Session) fetch(ctx context.Context, lock *lockfile.File, gitDir string, arrived *arrivals, how fetch.Handover) (*Fetched, error) {
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
	s.event(Event{Kind: FetchStarted, Crates: len(out.Crates), GitSources: len(out.Git)})

	arrived.plan(out)

	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(s.jobs)
	gitSlots := make(chan struct{}, maxGitFetches)
	// A git source that fails fails alone too (each is its own remote):
	// its error is kept, as a crate's is, and the others go on.
	gitErrs := make([]error, len(out.Git))
	for i := range out.Git {
		t := &out.Git[i]
		g.Go(func() error {
			select {
			case gitSlots <- struct{}{}:
				defer func() { <-gitSlots }()
			case <-ctx.Done():
				return ctx.Err()
			}
			name := redact.URL(t.URL) + "@" + t.Commit
			s.event(Event{Kind: GitStarted, Git: name})
			if err := s.git.Checkout(ctx, t.URL, t.Commit, t.Dir); err != nil {
				err = fmt.Errorf("%s (git dependency of %s): %w", t.Packages[0].ID(), lock.Path, err)
				if ctx.Err() == nil {
					gitErrs[i] = err
					return nil
				}
				return err
			}
			s.event(Event{Kind: GitDone, Git: name})
			arrived.gitTree(i)
			return nil
		})
	}
	// A crate the source does not serve as the lock pins fails alone: its
	// error is kept and the others go on, so that one run names them all.
	crateErrs := make([]error, len(out.Crates))
	for i := range out.Crates {
		c := &out.Crates[i]
		g.Go(func() error {
			file, err := s.crates.CrateFile(ctx, c.Package, how)
			if err != nil {
				if ctx.Err() == nil && isCrateFault(err) {
					crateErrs[i] = err
					return nil
				}
				return err
			}
			c.File, c.offset, c.Size, c.unread = file.Path, file.Offset, file.Size, file.Unverified
			arrived.crate(i)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := newCrateErrors(lock, out, crateErrs, gitErrs); err != nil {
		return nil, err
	}
	for _, c := range out.Crates {
		out.Bytes += c.Size
	}
	s.event(Event{Kind: FetchDone})
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

// CrateErrors are the crates of one lock that could not be fetched for a
// reason of their own (see isCrateFault), every one of them, in lock order.
type CrateErrors []error

func (e CrateErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

func (e CrateErrors) Unwrap() []error { return e }

// isCrateFault tells whether a crate's fetch failed for a reason of that
// crate alone, which the other crates do not share: the source does not
// have it (an HTTP 4xx, a file missing from a mirror, not cached while
// offline) or serves other bytes than the lock pins. Anything else (the
// network, the disk, 5xx after retries) fails the whole fetch at once.
func isCrateFault(err error) bool {
	var he *fetch.HTTPError
	var sum *fetch.ChecksumError
	switch {
	case errors.As(err, &sum), errors.Is(err, fetch.ErrOffline), errors.Is(err, fs.ErrNotExist):
		return true
	case errors.As(err, &he):
		return he.StatusCode >= 400 && he.StatusCode < 500 && he.StatusCode != http.StatusRequestTimeout && he.StatusCode != http.StatusTooManyRequests
	}
	return false
}

// newCrateErrors is the failures of f's crates (crateErrs, by index) and
// git sources (gitErrs), in lock order (a git source where its first crate
// is), or nil.
func newCrateErrors(lock *lockfile.File, f *Fetched, crateErrs, gitErrs []error) error {
	order := map[string]int{}
	for i, p := range lock.Packages {
		order[p.Source.Raw+" "+p.ID()] = i
	}
	type failure struct {
		at  int
		err error
	}
	var all []failure
	for i, err := range crateErrs {
		if err != nil {
			p := f.Crates[i].Package
			all = append(all, failure{order[p.Source.Raw+" "+p.ID()], err})
		}
	}
	for i, err := range gitErrs {
		if err != nil {
			p := f.Git[i].Packages[0]
			all = append(all, failure{order[p.Source.Raw+" "+p.ID()], err})
		}
	}
	if len(all) == 0 {
		return nil
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].at < all[b].at })
	out := make(CrateErrors, len(all))
	for i, fl := range all {
		out[i] = fl.err
	}
	return out
}
