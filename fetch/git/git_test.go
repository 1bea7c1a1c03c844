package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// assertSameTree compares our tree with the reference by NAR bytes
// (nix-store --dump) and NAR hash (nix hash path).
func assertSameTree(t *testing.T, got, want string) {
	t.Helper()
	if !bytes.Equal(narDump(t, got), narDump(t, want)) {
		t.Fatalf("NAR of %s differs from the reference\n--- ours\n%s--- reference\n%s", got, listing(t, got), listing(t, want))
	}
	if g, w := narHash(t, got), narHash(t, want); g != w {
		t.Fatalf("nix hash path: got %s, reference %s", g, w)
	}
}

func TestCheckoutMatchesReference(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	for _, transport := range []string{"file", "http"} {
		for _, c := range []string{"M1", "M2", "M3", "F1"} {
			t.Run(transport+"/"+c, func(t *testing.T) {
				url := w.fileURL("main")
				if transport == "http" {
					url = srv.url("main")
				}
				f := &Fetcher{AllowFileSubmodules: transport == "file", Jobs: 2}
				dest := filepath.Join(t.TempDir(), "out")
				if err := f.Checkout(testCtx(t), url, w.commits[c], dest); err != nil {
					t.Fatal(err)
				}
				ref, err := referenceTree(t, url, w.commits[c], transport == "file")
				if err != nil {
					t.Fatalf("reference: %v", err)
				}
				assertSameTree(t, dest, ref)
			})
		}
	}
}

// TestCheckoutContent states what the reference comparison covers, so that
// a world that accidentally lost a feature is noticed.
func TestCheckoutContent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f := &Fetcher{AllowFileSubmodules: true}
	dest := filepath.Join(t.TempDir(), "a", "b", "out")
	if err := f.Checkout(testCtx(t), w.fileURL("main"), w.commits["M1"], dest); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dest, p))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("notes.txt"); got != "line one\r\nline two\r\n" {
		t.Errorf("notes.txt = %q, want CRLF line ends (eol=crlf)", got)
	}
	if got := read("vendor/sub/deep/nested.txt"); got != "nested\n" {
		t.Errorf("nested submodule file = %q", got)
	}
	read("crates/foo/Cargo.toml")
	if fi, err := os.Stat(filepath.Join(dest, "script.sh")); err != nil || fi.Mode()&0o100 == 0 {
		t.Errorf("script.sh not executable: %v %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dest, "link")); err != nil || target != "README.md" {
		t.Errorf("link: %q %v", target, err)
	}
	if ents, err := os.ReadDir(filepath.Join(dest, "skipped")); err != nil || len(ents) != 0 {
		t.Errorf("skipped (update = none) should be an empty directory: %v %v", ents, err)
	}
	filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.Name() == ".git" {
			t.Errorf("%s left", p)
		}
		return nil
	})
	if ents, _ := os.ReadDir(filepath.Dir(dest)); len(ents) != 1 {
		t.Errorf("leftovers beside dest: %v", ents)
	}
}

func TestCheckoutFallbackWithoutFetchByID(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, allow := range []bool{true, false} {
		t.Run(fmt.Sprint("allowSHA=", allow), func(t *testing.T) {
			srv := serve(t, w.root, allow, 0)
			var log bytes.Buffer
			f := &Fetcher{Log: &log}
			dest := filepath.Join(t.TempDir(), "out")
			// M2 is at no branch tip: only a fetch by id at depth 1 or a
			// full fetch gets it.
			if err := f.Checkout(testCtx(t), srv.url("main"), w.commits["M2"], dest); err != nil {
				t.Fatal(err)
			}
			fellBack := strings.Contains(log.String(), "fetch by id failed")
			if fellBack == allow {
				t.Errorf("fell back to a full fetch: %v, want %v; log:\n%s", fellBack, !allow, log.String())
			}
			ref, err := referenceTree(t, srv.url("main"), w.commits["M2"], false)
			if err != nil {
				t.Fatal(err)
			}
			assertSameTree(t, dest, ref)
		})
	}
}

func TestCheckoutCache(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	cache := t.TempDir()
	f := &Fetcher{CacheDir: cache}
	ctx := testCtx(t)
	checkout := func(c string) int64 {
		t.Helper()
		before := srv.requests.Load()
		if err := f.Checkout(ctx, srv.url("main"), w.commits[c], filepath.Join(t.TempDir(), "out")); err != nil {
			t.Fatal(err)
		}
		return srv.requests.Load() - before
	}
	if n := checkout("M3"); n == 0 {
		t.Fatal("first checkout made no request")
	}
	if n := checkout("M3"); n != 0 {
		t.Errorf("second checkout of a cached commit made %d requests, want 0", n)
	}
	if n := checkout("F1"); n == 0 {
		t.Errorf("checkout of a new commit made no request")
	}
	off := &Fetcher{CacheDir: cache, Offline: true}
	if err := off.Checkout(ctx, srv.url("main"), w.commits["M3"], filepath.Join(t.TempDir(), "out")); err != nil {
		t.Errorf("offline checkout of a cached commit: %v", err)
	}
	err := off.Checkout(ctx, srv.url("main"), w.commits["M2"], filepath.Join(t.TempDir(), "out"))
	if !errors.Is(err, ErrCommitNotFound) {
		t.Errorf("offline checkout of an uncached commit: %v, want ErrCommitNotFound", err)
	}
	if ents, _ := filepath.Glob(filepath.Join(cache, "*.git")); len(ents) != 3 {
		t.Errorf("cache holds %v, want one repository per URL (main, sub, nested)", ents)
	}
	// Offline, a URL the cache has never seen is not found, and nothing
	// is written for it: no lock, no empty repository.
	before, _ := os.ReadDir(cache)
	err = off.Checkout(ctx, srv.url("other"), w.commits["M2"], filepath.Join(t.TempDir(), "out"))
	if !errors.Is(err, ErrCommitNotFound) {
		t.Errorf("offline checkout of an uncached URL: %v, want ErrCommitNotFound", err)
	}
	if _, err := off.ReadFile(ctx, srv.url("other"), "Cargo.toml"); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline ReadFile of an uncached URL: %v", err)
	}
	if after, _ := os.ReadDir(cache); len(after) != len(before) {
		t.Errorf("offline lookups of an uncached URL wrote to the cache: %d entries, then %d", len(before), len(after))
	}
}

// TestCheckoutConcurrent runs checkouts of one URL from several goroutines
// and two Fetchers sharing one cache (the lock is a flock, so this is also
// what two processes see).
func TestCheckoutConcurrent(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	cache := t.TempDir()
	fetchers := []*Fetcher{{CacheDir: cache}, {CacheDir: cache}}
	commits := []string{"M1", "M2", "M3", "F1"}
	dests := make([]string, 12)
	g, ctx := errgroup.WithContext(testCtx(t))
	for i := range dests {
		dests[i] = filepath.Join(t.TempDir(), "out")
		g.Go(func() error {
			return fetchers[i%2].Checkout(ctx, srv.url("main"), w.commits[commits[i%4]], dests[i])
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i := 4; i < len(dests); i++ {
		if !bytes.Equal(narDump(t, dests[i]), narDump(t, dests[i%4])) {
			t.Errorf("checkout %d differs from checkout %d of the same commit", i, i%4)
		}
	}
}

func TestCheckoutErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	missing := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name, url, commit string
		allowFile         bool
		want              []string // substrings of the error
		is                error
	}{
		{name: "unreachable", url: "http://127.0.0.1:1/nowhere.git", commit: w.commits["M1"],
			want: []string{"git http://127.0.0.1:1/nowhere.git @ " + w.commits["M1"] + ": "}},
		{name: "token as user", url: "https://SECRETTOKEN@127.0.0.1:1/nowhere.git", commit: w.commits["M1"],
			want: []string{"git https://REDACTED@127.0.0.1:1/nowhere.git @ " + w.commits["M1"] + ": "}},
		{name: "no such commit", url: srv.url("main"), commit: missing,
			want: []string{"git " + srv.url("main") + " @ " + missing + ": commit not found after full fetch"}, is: ErrCommitNotFound},
		{name: "not a commit id", url: srv.url("main"), commit: "main", want: []string{"not a full lowercase commit id"}},
		{name: "submodule missing", url: srv.url("main"), commit: w.commits["BAD"],
			want: []string{"git " + srv.url("main") + " @ " + w.commits["BAD"] + ": submodule vendor/sub: git " + srv.url("missing")}},
		{name: "submodule ext", url: srv.url("main"), commit: w.commits["EXT"],
			want: []string{"submodule vendor/sub", "ext::"}, is: ErrRefusedURL},
		{name: "submodule dash", url: srv.url("main"), commit: w.commits["DASH"],
			want: []string{"submodule vendor/sub", "begins with '-'"}, is: ErrRefusedURL},
		{name: "file submodule refused", url: w.fileURL("main"), commit: w.commits["M1"],
			want: []string{"submodule vendor/sub", "transport 'file' not allowed"}, is: ErrRefusedURL},
		{name: "dash url", url: "-uhttp://x/y.git", commit: w.commits["M1"], want: []string{"begins with '-'"}, is: ErrRefusedURL},
		{name: "ext url", url: "ext::sh -c touch% " + w.canary, commit: w.commits["M1"], want: []string{"ext::"}, is: ErrRefusedURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			f := &Fetcher{AllowFileSubmodules: tt.allowFile}
			err := f.Checkout(testCtx(t), tt.url, tt.commit, dest)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, s := range tt.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if !strings.Contains(err.Error(), tt.commit) {
				t.Errorf("error %q does not name the commit", err)
			}
			if strings.Contains(err.Error(), "SECRETTOKEN") {
				t.Errorf("error %q shows the token", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("left behind: %v", ents)
			}
			if _, err := os.Stat(w.canary); err == nil {
				t.Fatal("ext:: command ran")
			}
		})
	}
	t.Run("file submodule refused by git too", func(t *testing.T) {
		if _, err := referenceTree(t, w.fileURL("main"), w.commits["M1"], false); err == nil {
			t.Error("the reference accepted a file:// submodule; AllowFileSubmodules's default is wrong")
		}
	})
	t.Run("dest exists", func(t *testing.T) {
		dest := t.TempDir()
		err := (&Fetcher{}).Checkout(testCtx(t), srv.url("main"), w.commits["M1"], dest)
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		parent := t.TempDir()
		err := (&Fetcher{}).Checkout(ctx, srv.url("main"), w.commits["M1"], filepath.Join(parent, "out"))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if ents, _ := os.ReadDir(parent); len(ents) != 0 {
			t.Errorf("left behind: %v", ents)
		}
	})
}

func TestCheckoutDepthWarning(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	var log bytes.Buffer
	f := &Fetcher{Log: &log, AllowFileSubmodules: true}
	dest := filepath.Join(t.TempDir(), "out")
	if err := f.Checkout(testCtx(t), w.fileURL("main"), w.commits["D1"], dest); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "warning: ") || !strings.Contains(log.String(), "70 directories deep") {
		t.Errorf("no depth warning in log:\n%s", log.String())
	}
	log.Reset()
	if err := f.Checkout(testCtx(t), w.fileURL("main"), w.commits["M1"], filepath.Join(t.TempDir(), "out")); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "warning") {
		t.Errorf("warning for a shallow tree:\n%s", log.String())
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	cache := t.TempDir()
	f := &Fetcher{CacheDir: cache}
	ctx := testCtx(t)
	got, err := f.ReadFile(ctx, srv.url("main"), "crates/foo/src/lib.rs")
	if err != nil {
		t.Fatal(err)
	}
	if want := "pub fn foo() -> u8 { 3 }\n"; string(got) != want { // at M3, main's tip
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := f.ReadFile(ctx, srv.url("main"), "nope.json"); err == nil || !strings.Contains(err.Error(), "nope.json") {
		t.Errorf("missing file: %v", err)
	}
	before := srv.requests.Load()
	off := &Fetcher{CacheDir: cache, Offline: true}
	if got, err := off.ReadFile(ctx, srv.url("main"), "Cargo.toml"); err != nil || !strings.Contains(string(got), "[workspace]") {
		t.Errorf("offline: %q %v", got, err)
	}
	if n := srv.requests.Load() - before; n != 0 {
		t.Errorf("offline ReadFile made %d requests", n)
	}
}

func TestValidateURL(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://github.com/rust-lang/cargo", true},
		{"https://github.com/rust-lang/cargo.git", true},
		{"ssh://git@github.com/a/b.git", true},
		{"git@github.com:a/b.git", true},
		{"ssh://[::1]/a/b.git", true},
		{"file:///srv/git/a.git", true},
		{"/srv/git/a.git", true},
		{"", false},
		{"-uhttp://x", false},
		{"--upload-pack=touch /tmp/x", false},
		{"ext::sh -c touch% /tmp/x", false},
		{"EXT::sh", false},
		{"fd::17", false},
		{"https://x/y\n.git", false},
		{"https://s3cret@x/y\n.git", false},
		{"https://user:s3cret@x/y.git\x7f", false},
	}
	for _, tt := range tests {
		err := ValidateURL(tt.url)
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ValidateURL(%q) = %v: the refusal shows the credential", tt.url, err)
		}
		if (err == nil) != tt.ok {
			t.Errorf("ValidateURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrRefusedURL) {
			t.Errorf("ValidateURL(%q) = %v, not ErrRefusedURL", tt.url, err)
		}
	}
}

func TestTransportName(t *testing.T) {
	for u, want := range map[string]string{
		"file:///a/b": "file", "FILE:///a": "file", "/a/b": "file", "../a.git": "file", "a": "file",
		"https://x/y": "https", "HTTP://x/y": "http", "git://h/a": "git", "git@host:a/b": "ssh",
		"ssh://h/a": "ssh", "git+ssh://h/a": "ssh", "host:a": "ssh", "ftp://h/a": "ftp",
	} {
		if got := transportName(u); got != want {
			t.Errorf("transportName(%q) = %q, want %q", u, got, want)
		}
	}
}

func TestIsolatedEnv(t *testing.T) {
	env := isolatedEnv([]string{
		"PATH=/bin", "HOME=/home/u", "GIT_DIR=/x", "GIT_CONFIG_PARAMETERS='a.b=c'", "GIT_SSH_COMMAND=ssh -v",
		"HTTPS_PROXY=http://proxy:3128", "SSL_CERT_FILE=/etc/ca.pem", "XDG_CONFIG_HOME=/cfg",
	}, "/tmp/h")
	got := strings.Join(env, "\n") + "\n"
	for _, want := range []string{"PATH=/bin\n", "HOME=/tmp/h\n", "GIT_SSH_COMMAND=ssh -v\n", "HTTPS_PROXY=http://proxy:3128\n",
		"GIT_SSL_CAINFO=/etc/ca.pem\n", "GIT_CONFIG_NOSYSTEM=1\n", "GIT_CONFIG_GLOBAL=/dev/null\n", "GIT_TERMINAL_PROMPT=0\n",
		"GIT_ASKPASS=\n", "GIT_LFS_SKIP_SMUDGE=1\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("env lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"GIT_DIR", "GIT_CONFIG_PARAMETERS", "HOME=/home/u", "XDG_CONFIG_HOME"} {
		if strings.Contains(got, bad) {
			t.Errorf("env keeps %q", bad)
		}
	}
	env = isolatedEnv([]string{"SSL_CERT_FILE=/a", "NIX_SSL_CERT_FILE=/b"}, "/h")
	if !strings.Contains(strings.Join(env, "\n"), "GIT_SSL_CAINFO=/b") {
		t.Errorf("NIX_SSL_CERT_FILE should win over SSL_CERT_FILE: %v", env)
	}
}

func TestDepth(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a/b/c", "a/d", "e"} {
		os.MkdirAll(filepath.Join(dir, p), 0o755)
	}
	os.Symlink(".", filepath.Join(dir, "a/b/c/loop"))
	if d, err := Depth(dir); err != nil || d != 3 {
		t.Errorf("Depth = %d, %v; want 3", d, err)
	}
}

func TestLock(t *testing.T) {
	t.Parallel()
	repo := filepath.Join(t.TempDir(), "r.git")
	unlock, err := lock(context.Background(), repo, syscall.LOCK_EX)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := lock(ctx, repo, syscall.LOCK_EX); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock while held: %v, want DeadlineExceeded", err)
	}
	unlock()
	unlock2, err := lock(context.Background(), repo, syscall.LOCK_EX)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

// TestCheckoutProcesses runs checkouts in three processes (this test binary
// re-executed) sharing one cache.
func TestCheckoutProcesses(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	cache := t.TempDir()
	var dests []string
	g, ctx := errgroup.WithContext(testCtx(t))
	for i := range 3 {
		dest := filepath.Join(t.TempDir(), "out")
		dests = append(dests, dest)
		g.Go(func() error {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperCheckout$")
			cmd.Env = append(os.Environ(), "CARGOHASH_GIT_HELPER="+strings.Join([]string{cache, srv.url("main"), w.commits["M3"], dest}, "\n"))
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("process %d: %v\n%s", i, err, out)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dests[1:] {
		if !bytes.Equal(narDump(t, d), narDump(t, dests[0])) {
			t.Errorf("%s differs from %s", d, dests[0])
		}
	}
}

// TestHelperCheckout is TestCheckoutProcesses's child; it does nothing
// unless CARGOHASH_GIT_HELPER says what to check out.
func TestHelperCheckout(t *testing.T) {
	args := strings.Split(os.Getenv("CARGOHASH_GIT_HELPER"), "\n")
	if len(args) != 4 {
		return
	}
	f := &Fetcher{CacheDir: args[0]}
	if err := f.Checkout(testCtx(t), args[1], args[2], args[3]); err != nil {
		t.Fatal(err)
	}
}

// TestCheckoutRelativePaths runs with a relative cache and destination
// (the test's working directory is the package directory, so it moves into
// a temporary one through a child process's cwd instead of os.Chdir).
func TestCheckoutRelativePaths(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	dir := t.TempDir()
	cmd := exec.CommandContext(testCtx(t), os.Args[0], "-test.run=^TestHelperCheckout$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CARGOHASH_GIT_HELPER="+strings.Join([]string{"cache", srv.url("main"), w.commits["M3"], "out/tree"}, "\n"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "tree", "Cargo.toml")); err != nil {
		t.Error(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "cache", "*.git")); len(m) != 3 {
		t.Errorf("cache/: %v", m)
	}
}

// TestCheckoutGitCannotRun: when git's temporary HOME cannot be made
// (TMPDIR gone), a checkout that needs git fails saying so, and the cached
// repository stays: it is not taken for damaged.
func TestCheckoutGitCannotRun(t *testing.T) {
	root := t.TempDir()
	commits := plainRepo(t, root)
	srv := serve(t, root, true, 0)
	url := srv.url("plain")
	cache := t.TempDir()
	outs := t.TempDir()
	if err := (&Fetcher{CacheDir: cache}).Checkout(testCtx(t), url, commits["ATTR"], filepath.Join(outs, "first")); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(repoPath(cache, url), "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", filepath.Join(root, "gone"))
	for _, offline := range []bool{true, false} {
		var log bytes.Buffer
		err := (&Fetcher{CacheDir: cache, Offline: offline, Log: &log}).Checkout(testCtx(t), url, commits["ATTR"], filepath.Join(outs, fmt.Sprint(offline)))
		if err == nil || !strings.Contains(err.Error(), "temporary HOME") {
			t.Errorf("offline %v: %v, want git's temporary HOME named", offline, err)
		}
		if strings.Contains(log.String(), "damaged") {
			t.Errorf("offline %v: the cache was taken for damaged:\n%s", offline, log.String())
		}
		if _, err := os.Stat(marker); err != nil {
			t.Fatalf("offline %v: the cached repository was replaced: %v", offline, err)
		}
	}
}
