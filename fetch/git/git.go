// Package git checks out git dependencies the way nixpkgs does.
//
// [Fetcher.Checkout] writes, for a repository URL and a full commit id,
// exactly the tree that
//
//	nix-prefetch-git --fetch-submodules --url URL --rev COMMIT
//
// leaves before Nix hashes it: the commit checked out by the git command
// (so .gitattributes eol conversion, ident and working-tree-encoding apply as
// git applies them), submodules checked out recursively at their recorded
// commits (relative submodule URLs resolved by git against the parent's URL,
// update=none honoured), then every entry named ".git" at any depth removed.
// The NAR hash of that tree is what importCargoLock's outputHashes and the
// git/COMMIT directories of fetchCargoVendor pin; hashing is not done here.
//
// Over http:// and https:// the fetch is this package's own, speaking
// git's protocol version 2 (see smart.go), the commit just fetched is read
// back from the pack it came in (see packReader), and a tree that needs
// nothing of git's checkout but its blobs is written without git (see
// write.go); they give what git gives, and whatever they do not handle goes
// to git.
//
// git runs isolated, as in nix-prefetch-git: HOME is a fresh directory,
// there is no system or global configuration, no prompt, no askpass and no
// LFS smudging; proxy variables pass through and the CA bundle comes from
// NIX_GIT_SSL_CAINFO, GIT_SSL_CAINFO, NIX_SSL_CERT_FILE or SSL_CERT_FILE.
// URLs that begin with '-' or use the "<transport>::" helper form (ext::)
// are refused, for submodules too. Submodules over the file transport are
// refused unless AllowFileSubmodules is set, as git ≥ 2.38.1 (and so
// nix-prefetch-git) refuses them.
//
// Fetched objects live in one bare repository per URL under CacheDir, so a
// commit already fetched costs no network at all; every checkout re-verifies
// the commit's objects there, and a damaged repository is fetched again
// (see cache.go). The package does not
// fetch LFS objects, does not support SHA-1 abbreviations or ref names as
// commits, and does not hash or archive trees.
package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cargohash/cargohash/internal/publish"
	"github.com/cargohash/cargohash/internal/redact"
	"github.com/cargohash/cargohash/lockfile"
	"golang.org/x/sync/errgroup"
)

// MaxNARDepth is the directory nesting Nix ≥ 2.35 accepts in a NAR;
// Checkout warns about deeper trees.
const MaxNARDepth = 64

// DefaultStallTimeout is Fetcher.StallTimeout's default, as for crates.
const DefaultStallTimeout = 60 * time.Second

func (f *Fetcher) stallTimeout() time.Duration {
	if f.StallTimeout > 0 {
		return f.StallTimeout
	}
	return DefaultStallTimeout
}

// maxSubmoduleNesting bounds submodule recursion.
const maxSubmoduleNesting = 32

// Fetcher checks out git repositories. Its zero value works: no cache (a
// temporary one per call), no log, one submodule at a time. A Fetcher may be
// used by several goroutines at once, and several processes may share one
// CacheDir.
type Fetcher struct {
	// CacheDir holds one bare repository per URL (named by a hash of the
	// URL) and its lock file; the directory is this package's alone. Empty:
	// a temporary directory per call, removed afterwards.
	CacheDir string
	// Log receives progress lines and warnings; nil discards them.
	Log io.Writer
	// Jobs bounds how many submodules of one repository are fetched and
	// checked out at once; below 1 means 1.
	Jobs int
	// Offline forbids the network: commits must be in CacheDir already.
	Offline bool
	// AllowFileSubmodules lets submodules use file:// URLs and local paths.
	// git refuses those by default (protocol.file.allow=user, since 2.38.1),
	// so nix-prefetch-git fails on such a repository; tests and local mirrors
	// may want them.
	AllowFileSubmodules bool
	// Git is the git binary; empty means "git" from PATH.
	Git string
	// StallTimeout ends a fetch that has received nothing for that long;
	// 0 means DefaultStallTimeout.
	StallTimeout time.Duration

	logMu     sync.Mutex
	smartOnce sync.Once
	smart     *http.Client // see smartClient
}

// Error is the error of a checkout or read of one repository.
type Error struct {
	URL    string // as given; credentials are redacted when printed (internal/redact)
	Commit string // the commit, or "HEAD" for ReadFile
	Err    error
}

func (e *Error) Error() string {
	return "git " + redact.URL(e.URL) + " @ " + e.Commit + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// session is the state of one call: the isolated git runner and the cache
// directory in use.
type session struct {
	f         *Fetcher
	r         *runner
	cacheDir  string
	tempCache bool
}

func (f *Fetcher) newSession() (*session, error) {
	r, err := newRunner(f.Git, f.stallTimeout())
	if err != nil {
		return nil, err
	}
	s := &session{f: f, r: r, cacheDir: f.CacheDir}
	if s.cacheDir == "" {
		if s.cacheDir, err = os.MkdirTemp("", "cargohash-git-cache-"); err != nil {
			r.close()
			return nil, err
		}
		s.tempCache = true
	} else if err := s.makeCacheDir(); err != nil {
		r.close()
		return nil, err
	} else if s.cacheDir, err = filepath.Abs(s.cacheDir); err != nil {
		r.close()
		return nil, err
	}
	return s, nil
}

func (s *session) close() {
	s.r.close()
	if s.tempCache {
		os.RemoveAll(s.cacheDir)
	}
}

func (s *session) logf(format string, args ...any) {
	if s.f.Log == nil {
		return
	}
	s.f.logMu.Lock()
	defer s.f.logMu.Unlock()
	fmt.Fprintf(s.f.Log, format+"\n", args...)
}

// Checkout writes the tree of commit (a full object id) of the repository
// at url to dest, as described in the package comment. dest must not exist;
// its parent is created if needed. The tree is written under a temporary
// name beside dest and renamed into place when complete: on failure nothing
// is left at dest.
func (f *Fetcher) Checkout(ctx context.Context, url, commit, dest string) (err error) {
	if err := ValidateURL(url); err != nil {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	if !lockfile.IsCommitID(commit) {
		return &Error{URL: url, Commit: commit, Err: errors.New("not a full lowercase commit id")}
	}
	dest, err = filepath.Abs(dest)
	if err != nil {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	if _, err := os.Lstat(dest); err == nil {
		return &Error{URL: url, Commit: commit, Err: fmt.Errorf("%s already exists", dest)}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	tmp, release, err := publish.TempDir(dest, "tmp")
	if err != nil {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
		release()
	}()
	s, err := f.newSession()
	if err != nil {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	defer s.close()
	if err := s.checkout(ctx, url, commit, tmp, 0); err != nil {
		return err
	}
	if err := removeDotGit(tmp); err != nil {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	depth, err := Depth(tmp)
	if err != nil {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	if depth > MaxNARDepth {
		s.logf("warning: git %s @ %s: the tree is %d directories deep; Nix 2.35 and later refuse NAR trees deeper than %d", redact.URL(url), commit, depth, MaxNARDepth)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	if err := os.Rename(tmp, dest); err != nil {
		return &Error{URL: url, Commit: commit, Err: err}
	}
	return nil
}

// ReadFile returns the content of path (slash-separated, from the root) in
// the commit at the HEAD of the repository at url, fetched at depth 1 into
// the cache. Offline, the HEAD fetched last time is read.
func (f *Fetcher) ReadFile(ctx context.Context, url, path string) ([]byte, error) {
	if err := ValidateURL(url); err != nil {
		return nil, &Error{URL: url, Commit: "HEAD", Err: err}
	}
	s, err := f.newSession()
	if err != nil {
		return nil, &Error{URL: url, Commit: "HEAD", Err: err}
	}
	defer s.close()
	data, err := s.readHead(ctx, url, path)
	if err != nil {
		return nil, &Error{URL: url, Commit: "HEAD", Err: err}
	}
	return data, nil
}

// checkout fills the existing empty directory dir with commit of url and,
// recursively, its submodules. The .git directories stay; errors are *Error.
func (s *session) checkout(ctx context.Context, url, commit, dir string, nesting int) error {
	fail := func(err error) error { return &Error{URL: url, Commit: commit, Err: err} }
	if nesting > maxSubmoduleNesting {
		return fail(fmt.Errorf("submodules nested deeper than %d", maxSubmoduleNesting))
	}
	links, err := s.checkoutCommit(ctx, url, commit, dir)
	if err != nil {
		return fail(err)
	}
	subs, err := s.submodules(ctx, dir, url, links)
	if err != nil {
		return fail(err)
	}
	// Check every URL before fetching any, so that no goroutine is left
	// running when one is refused.
	var todo []submodule
	for _, sm := range subs {
		if sm.update == "none" {
			s.logf("git %s @ %s: skipping submodule %s (update = none)", redact.URL(url), commit, sm.path)
			continue
		}
		if err := ValidateURL(sm.url); err != nil {
			return fail(fmt.Errorf("submodule %s: %w", sm.path, err))
		}
		if t := transportName(sm.url); !submoduleTransportAllowed(t, s.f.AllowFileSubmodules) {
			return fail(fmt.Errorf("submodule %s: url %q: transport '%s' not allowed for submodules (git's default protocol.%s.allow, as in nix-prefetch-git): %w", sm.path, sm.url, t, t, ErrRefusedURL))
		}
		todo = append(todo, sm)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(s.f.Jobs, 1))
	for _, sm := range todo {
		g.Go(func() error {
			d := filepath.Join(dir, filepath.FromSlash(sm.path))
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			if err := s.checkout(gctx, sm.url, sm.commit, d, nesting+1); err != nil {
				return fmt.Errorf("submodule %s: %w", sm.path, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}
	return nil
}

// checkoutCommit checks out commit of url in dir: written as it is
// verified where git's checkout would do nothing more (see treeWriter),
// else by git in a repository of its own that borrows the objects of the
// cache, which holds them verified and stays locked until the checkout is
// done. It returns the commit's gitlinks.
func (s *session) checkoutCommit(ctx context.Context, url, commit, dir string) ([]submodule, error) {
	tw := newTreeWriter(dir, s.r.git)
	repo, links, unlock, err := s.useCommit(ctx, url, commit, tw)
	if err != nil {
		tw.reset()
		return nil, err
	}
	defer unlock()
	if tw.writing() {
		return links, nil
	}
	if err := tw.reset(); err != nil {
		return nil, err
	}
	if _, err := s.r.run(ctx, dir, "init", "--quiet", "--template=", "."); err != nil {
		return nil, err
	}
	alt := filepath.Join(dir, ".git", "objects", "info")
	if err := os.MkdirAll(alt, 0o755); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(filepath.Join(repo, "objects"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(alt, "alternates"), []byte(abs+"\n"), 0o644); err != nil {
		return nil, err
	}
	if _, err = s.r.run(ctx, dir, "checkout", "--quiet", commit); err != nil {
		return nil, err
	}
	return links, nil
}

// submodule is a gitlink of a checked-out commit with its resolved config.
type submodule struct {
	path, commit string
	url          string // resolved by git submodule init
	update       string // submodule.<name>.update after init ("" or e.g. "none")
}

// submodules resolves the config of links, the gitlinks of the checkout
// of url in dir: `git submodule init` copies each .gitmodules URL (relative
// ones resolved against remote.origin.url, as `git submodule update --init`
// does) and update mode into the repository's config. Raw URLs are checked
// first, so that a refused one is reported as such rather than as git's
// "no url found".
func (s *session) submodules(ctx context.Context, dir, url string, links []submodule) ([]submodule, error) {
	if len(links) == 0 {
		return nil, nil
	}
	// origin's URL is what git resolves relative submodule URLs against.
	if _, err := s.r.run(ctx, dir, "config", "remote.origin.url", url); err != nil {
		return nil, err
	}
	declared, err := s.config(ctx, dir, "--file", ".gitmodules")
	if err != nil {
		return nil, err
	}
	byPath := map[string]string{} // path → name
	for k, v := range declared {
		if name, ok := cutSubmoduleKey(k, "path"); ok {
			byPath[v] = name
		}
	}
	for _, l := range links {
		name, ok := byPath[l.path]
		if !ok {
			continue // git submodule init reports it
		}
		if raw := declared["submodule."+name+".url"]; raw != "" {
			if err := ValidateURL(raw); err != nil {
				return nil, fmt.Errorf("submodule %s: %w", l.path, err)
			}
		}
	}
	if _, err := s.r.run(ctx, dir, "submodule", "--quiet", "init"); err != nil {
		return nil, err
	}
	local, err := s.config(ctx, dir)
	if err != nil {
		return nil, err
	}
	for i, l := range links {
		name := byPath[l.path]
		links[i].url = local["submodule."+name+".url"]
		links[i].update = local["submodule."+name+".update"]
		if links[i].url == "" {
			return nil, fmt.Errorf("submodule %s: no url after git submodule init", l.path)
		}
	}
	return links, nil
}

// config returns the submodule.* entries of the repository's config (or of
// the file named by extra args), keys as git prints them.
func (s *session) config(ctx context.Context, dir string, extra ...string) (map[string]string, error) {
	args := append([]string{"config", "-z"}, extra...)
	args = append(args, "--get-regexp", `^submodule\.`)
	out, err := s.r.run(ctx, dir, args...)
	if err != nil {
		// Exit status 1: no such key (or no such file); treat as empty.
		if exitCode(err) == 1 {
			return map[string]string{}, nil
		}
		return nil, err
	}
	m := map[string]string{}
	for _, rec := range bytes.Split(out, []byte{0}) {
		if len(rec) == 0 {
			continue
		}
		k, v, _ := strings.Cut(string(rec), "\n")
		m[k] = v
	}
	return m, nil
}

// cutSubmoduleKey splits "submodule.<name>.<variable>" (name may hold dots).
func cutSubmoduleKey(key, variable string) (name string, ok bool) {
	rest, ok := strings.CutPrefix(key, "submodule.")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "."+variable)
}

// removeDotGit removes every entry named ".git" under root, at any depth,
// as nix-prefetch-git's `find "$dir" -name .git -print0 | xargs -0 rm -rf`.
func removeDotGit(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() != ".git" || p == root {
			return nil
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
}

// Depth returns how deeply directories nest under root: 0 for a directory
// without subdirectories, 1 if it has some that have none, and so on.
// Symbolic links are not followed.
func Depth(root string) (int, error) {
	deepest := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != root {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			deepest = max(deepest, strings.Count(rel, string(filepath.Separator))+1)
		}
		return nil
	})
	return deepest, err
}

// exitCode is the exit status of the failed command in err, or -1.
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}
