package git

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/reftest"
)

// testEnv is the environment of the git commands that build and check the
// test world: isolated, with fixed identities and dates so commit ids are
// stable.
func testEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Test Author",
		"GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=Test Committer",
		"GIT_COMMITTER_EMAIL=committer@example.com",
		"GIT_COMMITTER_DATE=2024-01-02T03:04:05Z",
		"LC_ALL=C",
	)
}

func runGit(t testing.TB, env []string, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// workRepo is a non-bare repository the test commits to.
type workRepo struct {
	t   testing.TB
	env []string
	dir string
}

func newWorkRepo(t testing.TB, env []string, dir string) *workRepo {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	runGit(t, env, dir, "init", "--quiet", "--initial-branch=main")
	return &workRepo{t: t, env: env, dir: dir}
}

func (w *workRepo) git(args ...string) string { return runGit(w.t, w.env, w.dir, args...) }

// file is one entry of a commit: content, or a symlink target, or a gitlink.
type file struct {
	content string
	exec    bool
	symlink string
	gitlink string // commit id of a submodule
}

// commit writes files (and stages only them, so gitlinks stay) and commits.
func (w *workRepo) commit(msg string, files map[string]file) string {
	w.t.Helper()
	for name, f := range files {
		p := filepath.Join(w.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			w.t.Fatal(err)
		}
		os.RemoveAll(p)
		switch {
		case f.gitlink != "":
			if err := os.MkdirAll(p, 0o755); err != nil {
				w.t.Fatal(err)
			}
			w.git("update-index", "--add", "--cacheinfo", "160000,"+f.gitlink+","+name)
			continue
		case f.symlink != "":
			if err := os.Symlink(f.symlink, p); err != nil {
				w.t.Fatal(err)
			}
		default:
			mode := os.FileMode(0o644)
			if f.exec {
				mode = 0o755
			}
			if err := os.WriteFile(p, []byte(f.content), mode); err != nil {
				w.t.Fatal(err)
			}
		}
		w.git("add", "--", name)
	}
	w.git("commit", "--quiet", "--allow-empty", "-m", msg)
	return w.git("rev-parse", "HEAD")
}

// world is a set of served bare repositories under root (main.git,
// sub.git, nested.git) with named commits:
//
//	M1  main, tag v1: workspace with crates/foo, script.sh (0755), link →
//	    README.md, notes.txt with .gitattributes "*.txt eol=crlf", submodule
//	    vendor/sub (../sub.git, which has submodule deep → ../nested.git) and
//	    submodule skipped (update = none, url ../missing.git)
//	M2  main, then moved on: at no branch tip
//	M3  main's tip
//	F1  branch feature, off M1
//	D1  branch deep: 70 nested directories
//	BAD branch badsub: vendor/sub's url is ../missing.git
//	EXT branch extsub: vendor/sub's url is ext::… (touching canary)
//	DASH branch dashsub: vendor/sub's url begins with '-'
type world struct {
	root    string
	canary  string
	commits map[string]string
}

func newWorld(t testing.TB) *world {
	reftest.Need(t, "git")
	base := t.TempDir()
	env := testEnv(filepath.Join(base, "home"))
	os.MkdirAll(filepath.Join(base, "home"), 0o755)
	w := &world{root: filepath.Join(base, "served"), canary: filepath.Join(base, "canary"), commits: map[string]string{}}

	nested := newWorkRepo(t, env, filepath.Join(base, "work", "nested"))
	n1 := nested.commit("nested", map[string]file{"nested.txt": {content: "nested\n"}})

	sub := newWorkRepo(t, env, filepath.Join(base, "work", "sub"))
	s1 := sub.commit("sub", map[string]file{
		"sub.rs":      {content: "pub fn sub() {}\n"},
		".gitmodules": {content: "[submodule \"deep\"]\n\tpath = deep\n\turl = ../nested.git\n"},
		"deep":        {gitlink: n1},
	})

	gitmodules := func(subURL string) string {
		return "[submodule \"vendor/sub\"]\n\tpath = vendor/sub\n\turl = " + subURL + "\n" +
			"[submodule \"skipped\"]\n\tpath = skipped\n\turl = ../missing.git\n\tupdate = none\n"
	}
	m := newWorkRepo(t, env, filepath.Join(base, "work", "main"))
	w.commits["M1"] = m.commit("first", map[string]file{
		"README.md":             {content: "# main\n"},
		"Cargo.toml":            {content: "[workspace]\nmembers = [\"crates/foo\"]\n"},
		"crates/foo/Cargo.toml": {content: "[package]\nname = \"foo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"},
		"crates/foo/src/lib.rs": {content: "pub fn foo() {}\n"},
		"script.sh":             {content: "#!/bin/sh\necho hi\n", exec: true},
		"link":                  {symlink: "README.md"},
		".gitattributes":        {content: "*.txt eol=crlf\n"},
		"notes.txt":             {content: "line one\nline two\n"},
		".gitmodules":           {content: gitmodules("../sub.git")},
		"vendor/sub":            {gitlink: s1},
		"skipped":               {gitlink: n1},
	})
	m.git("tag", "-a", "-m", "v1", "v1")
	w.commits["M2"] = m.commit("second", map[string]file{"README.md": {content: "# main, second\n"}})
	w.commits["M3"] = m.commit("third", map[string]file{"crates/foo/src/lib.rs": {content: "pub fn foo() -> u8 { 3 }\n"}})

	branch := func(name, from string) {
		m.git("checkout", "--quiet", "-b", name, from)
	}
	branch("feature", w.commits["M1"])
	w.commits["F1"] = m.commit("feature", map[string]file{"feature.txt": {content: "feature\n"}})
	branch("deep", w.commits["M1"])
	w.commits["D1"] = m.commit("deep", map[string]file{strings.Repeat("d/", 70) + "leaf": {content: "deep\n"}})
	branch("badsub", w.commits["M1"])
	w.commits["BAD"] = m.commit("bad", map[string]file{".gitmodules": {content: gitmodules("../missing.git")}})
	branch("extsub", w.commits["M1"])
	w.commits["EXT"] = m.commit("ext", map[string]file{".gitmodules": {content: gitmodules("ext::sh -c touch% " + w.canary)}})
	branch("dashsub", w.commits["M1"])
	w.commits["DASH"] = m.commit("dash", map[string]file{".gitmodules": {content: gitmodules("-uhttp://example.com/x.git")}})
	m.git("checkout", "--quiet", "main")

	for _, name := range []string{"nested", "sub", "main"} {
		runGit(t, env, base, "clone", "--quiet", "--bare", filepath.Join(base, "work", name), filepath.Join(w.root, name+".git"))
	}
	return w
}

func (w *world) fileURL(name string) string { return "file://" + w.root + "/" + name + ".git" }

// server serves a world's repositories through git http-backend (smart
// HTTP) on loopback.
type server struct {
	*httptest.Server
	requests atomic.Int64
}

// serve starts git http-backend over root. allowSHA sets
// uploadpack.allowReachableSHA1InWant, allowAnySHA1InWant and
// allowTipSHA1InWant (fetch by commit id); without it the server speaks
// protocol v0 only. delay is added to every request.
func serve(t testing.TB, root string, allowSHA bool, delay time.Duration) *server {
	t.Helper()
	execPath := strings.TrimSpace(runGit(t, os.Environ(), "", "--exec-path"))
	backend := filepath.Join(execPath, "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		reftest.Need(t, "git-http-backend")
	}
	allow := "false"
	if allowSHA {
		allow = "true"
	}
	home := t.TempDir()
	h := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
			"HOME=" + home,
			"GIT_CONFIG_COUNT=3",
			"GIT_CONFIG_KEY_0=uploadpack.allowReachableSHA1InWant", "GIT_CONFIG_VALUE_0=" + allow,
			"GIT_CONFIG_KEY_1=uploadpack.allowAnySHA1InWant", "GIT_CONFIG_VALUE_1=" + allow,
			"GIT_CONFIG_KEY_2=uploadpack.allowTipSHA1InWant", "GIT_CONFIG_VALUE_2=" + allow,
		},
		Stderr: io.Discard,
	}
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if delay > 0 {
			time.Sleep(delay)
		}
		if !allowSHA {
			// git upload-pack speaking protocol v2 serves any wanted
			// object whatever allow*SHA1InWant say; without the
			// Git-Protocol header it speaks v0, which enforces them.
			r.Header.Del("Git-Protocol")
		}
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) url(name string) string { return s.URL + "/" + name + ".git" }

// referenceTree runs nix-prefetch-git's procedure with the real git (its
// commands as in nixpkgs' pkgs/build-support/fetchgit/nix-prefetch-git with
// --fetch-submodules and no --deepClone or --leave-dotGit) into a fresh
// directory and returns it. allowFile adds -c protocol.file.allow=always to
// the submodule update, without which git refuses file:// submodules.
func referenceTree(t testing.TB, url, commit string, allowFile bool) (string, error) {
	t.Helper()
	base := t.TempDir()
	home := filepath.Join(base, "home")
	dir := filepath.Join(base, "tree")
	os.MkdirAll(home, 0o755)
	os.MkdirAll(dir, 0o755)
	sub := "git"
	if allowFile {
		sub = "git -c protocol.file.allow=always"
	}
	script := `set -e
git init --quiet --initial-branch=master
git remote add origin "$URL"
git fetch --quiet --depth=1 origin "$REV" || git fetch --quiet -t origin
git checkout --quiet -b fetchgit "$REV"
` + sub + ` submodule --quiet update --init --recursive -j 1 --depth 1 ||
` + sub + ` submodule --quiet update --init --recursive -j 1
find . -name .git -print0 | xargs -0 rm -rf
`
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(testEnv(home), "URL="+url, "REV="+commit)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("reference procedure: %v\n%s", err, out)
	}
	return dir, nil
}

// narDump is `nix-store --dump dir`.
func narDump(t testing.TB, dir string) []byte {
	t.Helper()
	reftest.Need(t, "nix-store")
	out, err := exec.Command("nix-store", "--dump", dir).Output()
	if err != nil {
		t.Fatalf("nix-store --dump %s: %v", dir, err)
	}
	return out
}

// narHash is `nix hash path dir` (SRI sha256).
func narHash(t testing.TB, dir string) string {
	t.Helper()
	reftest.Need(t, "nix")
	out, err := exec.Command("nix", "--extra-experimental-features", "nix-command", "hash", "path", dir).Output()
	if err != nil {
		t.Fatalf("nix hash path %s: %v", dir, err)
	}
	return string(bytes.TrimSpace(out))
}

// listing is `find dir` with types and modes, to show how two trees differ.
func listing(t testing.TB, dir string) string {
	out, _ := exec.Command("find", dir, "-printf", "%P %y %m %s %l\n").Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}
