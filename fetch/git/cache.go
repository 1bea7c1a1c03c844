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
	"syscall"
	"time"

	"github.com/cargohash/cargohash/internal/redact"
)

// ErrCommitNotFound is wrapped by the error of a commit the remote (or, when
// offline, the cache) does not have.
var ErrCommitNotFound = errors.New("commit not found")

// repoPath is the bare repository caching url under dir: its name is the
// hex of the first 16 bytes of sha256(url), so any URL makes a safe name.
func repoPath(dir, url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(dir, hex.EncodeToString(sum[:16])+".git")
}

// lock takes the exclusive lock of the repository at repo (a flock on
// repo+".lock"), waiting until it is free or ctx is done. flock excludes
// other processes and, since every call opens the file anew, other
// goroutines of this one.
func lock(ctx context.Context, repo string) (unlock func(), err error) {
	f, err := os.OpenFile(repo+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	wait := 5 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
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
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// openRepo returns the bare repository caching url, creating it if needed.
// The caller holds its lock.
func (s *session) openRepo(ctx context.Context, repo, url string) error {
	if _, err := os.Stat(repo); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	tmp := repo + ".tmp"
	if err := os.RemoveAll(tmp); err != nil { // left by a crash; we hold the lock
		return err
	}
	if _, err := s.r.run(ctx, filepath.Dir(repo), "init", "--quiet", "--bare", "--template=", tmp); err != nil {
		return err
	}
	// For people looking into the cache: which URL this repository mirrors.
	if err := os.WriteFile(filepath.Join(tmp, "cargohash-url"), []byte(url+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, repo)
}

// has reports whether the repository holds commit.
func (s *session) has(ctx context.Context, repo, commit string) bool {
	_, err := s.r.run(ctx, repo, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}

// fetchCommit makes sure the cached repository of url holds commit and
// returns its path. It does what nix-prefetch-git does: fetch just the
// commit at depth 1 (servers that allow wants by id), else every branch and
// tag. The commit is kept under refs/cargohash/<commit> so that it stays in
// the cache; when it is there already, no network is used.
func (s *session) fetchCommit(ctx context.Context, url, commit string) (string, error) {
	repo := repoPath(s.cacheDir, url)
	unlock, err := lock(ctx, repo)
	if err != nil {
		return "", err
	}
	defer unlock()
	if err := s.openRepo(ctx, repo, url); err != nil {
		return "", err
	}
	if s.has(ctx, repo, commit) {
		return repo, nil
	}
	if s.f.Offline {
		return "", fmt.Errorf("%w in cache (offline)", ErrCommitNotFound)
	}
	s.logf("fetching %s @ %s", redact.URL(url), commit)
	_, err = s.r.run(ctx, repo, "fetch", "--quiet", "--no-tags", "--depth=1", "--end-of-options", url, "+"+commit+":refs/cargohash/"+commit)
	if err == nil && s.has(ctx, repo, commit) {
		return repo, nil
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	s.logf("fetching %s @ %s: fetch by id failed, fetching all branches and tags", redact.URL(url), commit)
	args := []string{"fetch", "--quiet", "--tags"}
	if out, err := s.r.run(ctx, repo, "rev-parse", "--is-shallow-repository"); err == nil && bytes.HasPrefix(out, []byte("true")) {
		args = append(args, "--unshallow")
	}
	args = append(args, "--end-of-options", url, "+refs/heads/*:refs/remotes/origin/*")
	if _, err := s.r.run(ctx, repo, args...); err != nil {
		return "", err
	}
	if !s.has(ctx, repo, commit) {
		return "", fmt.Errorf("%w after full fetch", ErrCommitNotFound)
	}
	if _, err := s.r.run(ctx, repo, "update-ref", "refs/cargohash/"+commit, commit); err != nil {
		return "", err
	}
	return repo, nil
}

// readHead returns the content of path in the commit at url's HEAD, after a
// depth-1 fetch of HEAD (none when offline: the last fetched HEAD is used).
func (s *session) readHead(ctx context.Context, url, path string) ([]byte, error) {
	repo := repoPath(s.cacheDir, url)
	unlock, err := lock(ctx, repo)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.openRepo(ctx, repo, url); err != nil {
		return nil, err
	}
	const ref = "refs/cargohash/HEAD"
	if !s.f.Offline {
		s.logf("fetching %s @ HEAD", redact.URL(url))
		if _, err := s.r.run(ctx, repo, "fetch", "--quiet", "--no-tags", "--depth=1", "--end-of-options", url, "+HEAD:"+ref); err != nil {
			return nil, err
		}
	}
	if _, err := s.r.run(ctx, repo, "rev-parse", "--verify", "--quiet", ref); err != nil {
		return nil, fmt.Errorf("HEAD not in cache (offline)")
	}
	data, err := s.r.run(ctx, repo, "cat-file", "blob", ref+":"+path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}
