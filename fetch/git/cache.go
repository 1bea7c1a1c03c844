package git

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cargohash/cargohash/internal/publish"
	"github.com/cargohash/cargohash/internal/redact"
)

// The cache: CacheDir holds, per URL, a bare repository <key>.git and its
// lock file <key>.git.lock (key: see repoPath). Readers (a checkout of a
// commit that is there) share the lock; fetching and repairing take it
// alone, and the checkout of what was just fetched keeps it so (a checkout
// is short; verifying the commit again under a shared lock would cost more).
// The lock is a flock, so a killed process never leaves it held.
//
// Nothing in the cache is trusted: before a commit is checked out, every
// object of its tree is read back and hashed against its id (see verify),
// because git's checkout does not check that and a damaged pack can hand it
// another object's bytes. A repository that fails to serve a commit and is
// found damaged (a broken HEAD, config or refs, objects missing or corrupt,
// a stale *.lock of a killed git) is set aside by a rename and fetched again
// once, with one line on the log.

// ErrCommitNotFound is wrapped by the error of a commit the remote (or, when
// offline, the cache) does not have.
var ErrCommitNotFound = errors.New("commit not found")

// lockWait bounds how long a process waits for another one's lock on a
// repository: far longer than any fetch, short of forever.
var lockWait = 30 * time.Minute

// repoPath is the bare repository caching url under dir: its name is the
// hex of the first 16 bytes of sha256(url), so any URL makes a safe name.
func repoPath(dir, url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(dir, hex.EncodeToString(sum[:16])+".git")
}

// lock takes the lock of the repository at repo (a flock on repo+".lock"):
// how is syscall.LOCK_SH or syscall.LOCK_EX. It waits until the lock is
// free, ctx is done or lockWait has passed. flock excludes other processes
// and, since every call opens the file anew, other goroutines of this one.
// What cannot be opened as a lock (a directory, a symlink) cannot be held by
// anyone either: it is set aside.
func lock(ctx context.Context, repo string, how int) (unlock func(), err error) {
	path := repo + ".lock"
	const flags = os.O_RDONLY | os.O_CREATE | syscall.O_NOFOLLOW | syscall.O_NONBLOCK
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			if err := publish.Discard(path); err != nil {
				return nil, fmt.Errorf("locking %s: %w", repo, err)
			}
			f, err = os.OpenFile(path, flags, 0o644)
		}
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", repo, err)
		}
	}
	deadline := time.NewTimer(lockWait)
	defer deadline.Stop()
	wait := 5 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", repo, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-deadline.C:
			f.Close()
			return nil, fmt.Errorf("locking %s: another process has held it for %v", repo, lockWait)
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// makeCacheDir makes the cache directory; something else in its place (a
// file, a dangling symlink: the directory is this package's alone) is
// replaced, with one line on the log, by the first of the sessions that
// find it.
func (s *session) makeCacheDir() error {
	return publish.MakeDir(s.cacheDir, func() {
		s.logf("git cache: %s is damaged (not a directory); replacing it", s.cacheDir)
	})
}

// damagedError says what is wrong with a cached repository.
type damagedError struct{ err error }

func (e *damagedError) Error() string { return e.err.Error() }
func (e *damagedError) Unwrap() error { return e.err }

// useCommit makes sure the cached repository of url holds commit intact
// and returns it, the commit's gitlinks and the repository's lock, held:
// the caller reads the commit and then unlocks. A commit already there costs
// no network and only a shared lock; one fetched now is read under the
// exclusive lock it was fetched and verified under, so that nothing can
// change it between the verification and the read.
func (s *session) useCommit(ctx context.Context, url, commit string, tw *treeWriter) (repo string, links []submodule, unlock func(), err error) {
	repo = repoPath(s.cacheDir, url)
	if s.offlineMissing(repo) {
		return "", nil, nil, fmt.Errorf("%w in cache (offline)", ErrCommitNotFound)
	}
	unlock, err = lock(ctx, repo, syscall.LOCK_SH)
	if err != nil {
		return "", nil, nil, err
	}
	if _, err := os.Lstat(repo); err == nil && brokenLayout(repo) == "" { // git would hang on a FIFO for HEAD
		if links, err := s.verify(ctx, repo, commit, tw); err == nil {
			return repo, links, unlock, nil
		}
	}
	unlock()
	if ctx.Err() != nil {
		return "", nil, nil, ctx.Err()
	}
	unlock, err = s.update(ctx, repo, url, func(fresh bool) (err error) {
		links, err = s.fetchCommit(ctx, repo, url, commit, fresh, tw)
		return err
	})
	if err != nil {
		return "", nil, nil, err
	}
	return repo, links, unlock, nil
}

// offlineMissing reports whether the session is offline and the cache has
// no repository at repo: there is nothing to look in, and nothing is to be
// written (no lock, no empty repository) for a lookup that must fail.
func (s *session) offlineMissing(repo string) bool {
	if !s.f.Offline {
		return false
	}
	_, err := os.Lstat(repo)
	return errors.Is(err, fs.ErrNotExist)
}

// update runs fetch, which fetches into repo, with the repository's lock
// held alone, and returns with the lock still held: the caller reads what
// was fetched, then unlocks. fetch is told whether the repository was just
// created (so it has nothing to look for there). When fetch fails and the
// repository turns out to be damaged, it is set aside (one line on the log)
// and fetch runs once more on a new one.
func (s *session) update(ctx context.Context, repo, url string, fetch func(fresh bool) error) (unlock func(), err error) {
	held, err := lock(ctx, repo, syscall.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			held()
		}
	}()
	fresh, err := s.openRepo(repo, url)
	if err == nil {
		err = fetch(fresh)
	}
	if err == nil || ctx.Err() != nil {
		return held, err
	}
	reason := s.damage(ctx, repo, err)
	if reason == "" {
		return nil, err
	}
	s.logf("git cache: %s: damaged repository (%s); fetching it again", redact.URL(url), oneLine(reason))
	if err := publish.Discard(repo); err != nil {
		return nil, fmt.Errorf("setting aside the damaged cache %s: %w", repo, err)
	}
	if fresh, err = s.openRepo(repo, url); err != nil {
		return nil, err
	}
	return held, fetch(fresh)
}

// damage says what is wrong with repo, which failed with err; "" means
// nothing is, and err is the network's or the remote's, or git cannot run
// here to tell.
func (s *session) damage(ctx context.Context, repo string, err error) string {
	if cannotRun(err) {
		return ""
	}
	if de := (*damagedError)(nil); errors.As(err, &de) {
		return de.Error()
	}
	if reason := brokenLayout(repo); reason != "" {
		return reason
	}
	if name := staleLock(repo); name != "" {
		return "stale lock file " + name + " of a killed git"
	}
	if _, err := s.r.runBare(ctx, repo, "fsck", "--connectivity-only", "--no-dangling", "--no-progress"); err != nil && ctx.Err() == nil && !cannotRun(err) {
		return err.Error()
	}
	return ""
}

// brokenLayout says what is missing from the bare repository repo, or "":
// without these git does not recognise a repository. objects/pack may be
// missing (git makes it), but not something else in its place, where
// nothing could be fetched.
func brokenLayout(repo string) string {
	for _, e := range []struct {
		name          string
		dir, optional bool
	}{{"", true, false}, {"HEAD", false, false}, {"config", false, false}, {"objects", true, false}, {"refs", true, false}, {"objects/pack", true, true}} {
		fi, err := os.Lstat(filepath.Join(repo, e.name))
		switch {
		case e.optional && errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return err.Error()
		case e.dir && !fi.IsDir():
			return filepath.Join(repo, e.name) + " is not a directory"
		case !e.dir && !fi.Mode().IsRegular():
			return filepath.Join(repo, e.name) + " is not a regular file"
		}
	}
	return ""
}

// staleLock returns the first *.lock file in repo (relative), or "". The
// caller holds the repository's lock alone, so no git of ours is running
// in it: such a file is left by a git that was killed, and git refuses to
// update what it guards. Loose object directories are not searched (git
// takes no locks there).
func staleLock(repo string) string {
	found := ""
	filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return filepath.SkipAll
		}
		rel, _ := filepath.Rel(repo, p)
		if d.IsDir() && filepath.Dir(rel) == "objects" && len(d.Name()) == 2 {
			return filepath.SkipDir
		}
		if strings.HasSuffix(d.Name(), ".lock") {
			found = rel
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

// oneLine shortens a reason for the log.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// openRepo makes sure repo is a bare repository, creating it if it does not
// exist (under a temporary name, renamed when complete); created says it
// did. A repository whose layout is broken is a *damagedError. The caller
// holds the lock alone.
func (s *session) openRepo(repo, url string) (created bool, err error) {
	if _, err := os.Lstat(repo); err == nil {
		if reason := brokenLayout(repo); reason != "" {
			return false, &damagedError{errors.New(reason)}
		}
		// Temporary files of a killed fetch (ours or git's): no fetch
		// runs here but the caller's.
		for _, pattern := range []string{"objects/pack/tmp_pack_*", "objects/pack/tmp_idx_*", "cargohash-tmp-*"} {
			left, _ := filepath.Glob(filepath.Join(repo, pattern))
			for _, p := range left {
				os.Remove(p)
			}
		}
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	tmp := repo + ".tmp"
	if err := os.RemoveAll(tmp); err != nil { // left by a killed process; we hold the lock
		return false, err
	}
	if err := initBare(tmp, url); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, repo)
}

// initBare writes an empty bare repository, without a git process: the
// repository only ever receives fetches (no work tree, so nothing for git
// to probe), and a git process costs more than the whole of this. It is
// what `git init --bare --template=` writes less objects/info, refs/heads
// and refs/tags, which git makes when it needs them: directories are
// dear to make here (a fifth of a cold checkout's CPU with ten at once).
// cargohash-url says, for people looking into the cache, which URL it
// mirrors.
func initBare(dir, url string) error {
	for _, d := range []string{"objects/pack", "refs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for name, content := range map[string]string{
		"HEAD":          "ref: refs/heads/master\n",
		"config":        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n",
		"cargohash-url": redact.URL(url) + "\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// has reports whether the repository holds commit.
func (s *session) has(ctx context.Context, repo, commit string) bool {
	_, err := s.r.runBare(ctx, repo, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}

// fetchCommit fetches commit of url into repo unless it is there already
// (fresh: repo was just created, so it is not) and returns its gitlinks.
// It does what nix-prefetch-git does: fetch just the commit at depth 1
// (servers that allow wants by id), else every branch and tag. The commit
// is kept under refs/cargohash/<commit> so that it stays in the cache. The
// caller holds the lock alone. A commit that is still not intact after a
// successful fetch is a *damagedError.
func (s *session) fetchCommit(ctx context.Context, repo, url, commit string, fresh bool, tw *treeWriter) ([]submodule, error) {
	if !fresh {
		links, verr := s.verify(ctx, repo, commit, tw) // another process may have fetched it meanwhile
		if verr == nil {
			return links, nil
		}
		switch nc := (*notCommitError)(nil); {
		case errors.As(verr, &nc), cannotRun(verr):
			return nil, verr
		case errors.Is(verr, errAbsent):
		case ctx.Err() != nil:
			return nil, ctx.Err()
		default:
			// The commit is there but not intact, or git cannot read the
			// repository: fetching again would leave the damage in place
			// (git fetches nothing it has, or fails) or hide it behind a
			// second copy (fetchSmart), so the repository is made anew.
			return nil, &damagedError{verr}
		}
	}
	if s.f.Offline {
		return nil, fmt.Errorf("%w in cache (offline)", ErrCommitNotFound)
	}
	fetched := func() ([]submodule, error) {
		links, verr := s.verify(ctx, repo, commit, tw)
		if nc := (*notCommitError)(nil); errors.As(verr, &nc) || cannotRun(verr) {
			return nil, verr
		}
		if verr != nil {
			return nil, &damagedError{verr}
		}
		return links, nil
	}
	s.logf("fetching %s @ %s", redact.URL(url), commit)
	if client := s.f.smartClient(); client != nil && smartURL(url) {
		pack, err := s.fetchSmart(ctx, client, repo, url, commit)
		if err == nil {
			// The pack is read back without git; failing that (another
			// pack of the repository may hold what it lacks), through git.
			links, err := verifyPack(ctx, pack, commit, tw)
			if nc := (*notCommitError)(nil); err == nil || errors.As(err, &nc) {
				return links, err
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			links, err = fetched()
			if de := (*damagedError)(nil); !errors.As(err, &de) {
				return links, err
			}
			// The pack does not hold the commit whole: without it, git
			// fetches what it lacks.
			os.Remove(pack.name + ".idx")
			os.Remove(pack.name + ".pack")
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if se := (*stallError)(nil); errors.As(err, &se) {
			return nil, se
		}
		// git fetches it, or says in its words why it cannot.
	}
	_, err := s.r.runBare(ctx, repo, "fetch", "--quiet", "--no-tags", "--depth=1", "--end-of-options", url, "+"+commit+":refs/cargohash/"+commit)
	if err == nil {
		return fetched()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if cannotRun(err) {
		return nil, err
	}
	s.logf("fetching %s @ %s: fetch by id failed, fetching all branches and tags", redact.URL(url), commit)
	args := []string{"fetch", "--quiet", "--tags"}
	if out, err := s.r.runBare(ctx, repo, "rev-parse", "--is-shallow-repository"); err == nil && bytes.HasPrefix(out, []byte("true")) {
		args = append(args, "--unshallow")
	}
	args = append(args, "--end-of-options", url, "+refs/heads/*:refs/remotes/origin/*")
	if _, err := s.r.runBare(ctx, repo, args...); err != nil {
		return nil, err
	}
	if !s.has(ctx, repo, commit) {
		return nil, fmt.Errorf("%w after full fetch", ErrCommitNotFound)
	}
	if _, err := s.r.runBare(ctx, repo, "update-ref", "refs/cargohash/"+commit, commit); err != nil {
		return nil, err
	}
	return fetched()
}

// readHead returns the content of path in the commit at url's HEAD, after a
// depth-1 fetch of HEAD (none when offline: the last fetched HEAD is used).
func (s *session) readHead(ctx context.Context, url, path string) ([]byte, error) {
	repo := repoPath(s.cacheDir, url)
	if s.offlineMissing(repo) {
		return nil, fmt.Errorf("HEAD not in cache (offline)")
	}
	const ref = "refs/cargohash/HEAD"
	var data []byte
	unlock, err := s.update(ctx, repo, url, func(bool) error {
		if !s.f.Offline {
			s.logf("fetching %s @ HEAD", redact.URL(url))
			if _, err := s.r.runBare(ctx, repo, "fetch", "--quiet", "--no-tags", "--depth=1", "--end-of-options", url, "+HEAD:"+ref); err != nil {
				return err
			}
		}
		if _, err := s.r.runBare(ctx, repo, "rev-parse", "--verify", "--quiet", ref); err != nil {
			if cannotRun(err) {
				return err
			}
			if s.f.Offline {
				return fmt.Errorf("HEAD not in cache (offline)")
			}
			return &damagedError{fmt.Errorf("%s missing right after fetching it", ref)}
		}
		oid, err := s.r.runBare(ctx, repo, "rev-parse", "--verify", "--quiet", ref+":"+path)
		if cannotRun(err) {
			return err
		} else if err != nil {
			return fmt.Errorf("%s: not in the commit at HEAD", path)
		}
		data, err = s.readBlob(ctx, repo, string(bytes.TrimSpace(oid)))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	unlock()
	return data, nil
}
