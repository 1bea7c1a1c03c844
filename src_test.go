package cargohash_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/fetch/git"
	"github.com/cargohash/cargohash/internal/reftest"
)

// rootLock is the Cargo.lock of a project without dependencies.
const rootLock = "version = 3\n\n[[package]]\nname = \"proj\"\nversion = \"1.0.0\"\n"

// makeProject writes a source tree with every awkward shape an archive can
// carry into dir/proj-1.0 and returns that directory.
func makeProject(t *testing.T, dir string) string {
	t.Helper()
	top := filepath.Join(dir, "proj-1.0")
	long := strings.Repeat("l", 60) + "/" + strings.Repeat("n", 110) + ".rs" // > 100 bytes: GNU longname / PAX path
	files := map[string]string{
		"Cargo.lock":  rootLock,
		"Cargo.toml":  "[package]\nname = \"proj\"\nversion = \"1.0.0\"\n",
		"src/main.rs": "fn main() {}\n",
		"bin/run.sh":  "#!/bin/sh\necho hi\n",
		long:          "// long\n",
		"ünïcode.txt": "u\n",
	}
	for name, data := range files {
		p := filepath.Join(top, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Chmod(filepath.Join(top, "bin/run.sh"), 0o755))
	must(t, os.MkdirAll(filepath.Join(top, "empty/dir"), 0o755))
	must(t, os.Symlink("src/main.rs", filepath.Join(top, "main-link.rs")))
	must(t, os.Symlink("missing", filepath.Join(top, "dangling")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(top, "absolute"))) // kept by tar and Nix,
	must(t, os.Symlink("../../outside", filepath.Join(top, "src/up"))) // never followed
	must(t, os.Link(filepath.Join(top, "src/main.rs"), filepath.Join(top, "hard.rs")))
	return top
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func runIn(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(reftest.Need(t, name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.org", "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.org", "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func srcSession(t *testing.T) *cargohash.Session {
	t.Helper()
	s, err := cargohash.Open(cargohash.Options{Fetch: fetch.Options{NoCache: true, NoCargoHome: true, Retries: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSrcArchivesMatchNix: the fetchzip hash of every archive format and
// shape equals `nix-prefetch-url --unpack`.
func TestSrcArchivesMatchNix(t *testing.T) {
	reftest.Need(t, "nix-prefetch-url")
	dir := t.TempDir()
	top := makeProject(t, dir)
	arch := t.TempDir()
	a := func(name string) string { return filepath.Join(arch, name) }

	// A git repository of the project for git archive (pax global header).
	repo := filepath.Join(dir, "repo")
	must(t, os.CopyFS(repo, os.DirFS(top)))
	runIn(t, repo, "git", "init", "-q", "-b", "main")
	runIn(t, repo, "git", "add", "-A")
	runIn(t, repo, "git", "commit", "-q", "-m", "init")

	// A second top-level entry for the archives without a single top dir.
	must(t, os.WriteFile(filepath.Join(dir, "NOTES"), []byte("beside\n"), 0o644))

	tarGNU := []string{"--format=gnu", "--sort=name", "--owner=0", "--group=0", "--numeric-owner"}
	for _, c := range []struct {
		name string
		tool string
		dir  string
		args []string
	}{
		{"gnu.tar.gz", "tar", dir, append(tarGNU, "-czf", a("gnu.tar.gz"), "proj-1.0")},
		{"pax.tar.xz", "tar", dir, []string{"--format=pax", "-cJf", a("pax.tar.xz"), "proj-1.0"}},
		{"gnu.tar.bz2", "tar", dir, append(tarGNU, "-cjf", a("gnu.tar.bz2"), "proj-1.0")},
		{"gnu.tar.zst", "tar", dir, append(tarGNU, "--zstd", "-cf", a("gnu.tar.zst"), "proj-1.0")},
		{"plain.tar", "tar", dir, append(tarGNU, "-cf", a("plain.tar"), "proj-1.0")},
		{"flat.tar.gz", "tar", top, append(tarGNU, "-czf", a("flat.tar.gz"), ".")},
		{"two-tops.tar.gz", "tar", dir, append(tarGNU, "-czf", a("two-tops.tar.gz"), "proj-1.0", "NOTES")},
		{"git.tar.gz", "git", repo, []string{"archive", "--format=tar.gz", "--prefix=proj-1.0/", "-o", a("git.tar.gz"), "HEAD"}},
		{"top.zip", "zip", dir, []string{"-qry", a("top.zip"), "proj-1.0"}},
		{"flat.zip", "zip", top, []string{"-qry", a("flat.zip"), "."}},
	} {
		t.Run(c.name, func(t *testing.T) {
			runIn(t, c.dir, c.tool, c.args...)
			want := reftest.PrefetchUnpack(t, a(c.name))
			var opt cargohash.SrcOptions
			if strings.HasPrefix(c.name, "two-tops") {
				opt.CargoRoot = "proj-1.0"
			}
			res, err := srcSession(t).Src(context.Background(), "file://"+a(c.name), opt)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Hash.String(); got != want {
				t.Errorf("hash %s, nix-prefetch-url --unpack %s", got, want)
			}
			flat := strings.HasPrefix(c.name, "flat") || strings.HasPrefix(c.name, "two-tops")
			if gotFlat := len(res.Args) == 3 && res.Args[1].Name == "stripRoot"; gotFlat != flat {
				t.Errorf("args %v: stripRoot = false expected %v", res.Args, flat)
			}
		})
	}
}

// TestSrcGitAndForge: a git URL with a REF gives fetchgit's tree (the
// nix-prefetch-git procedure of fetch/git), and a GitHub repository served
// from loopback gives fetchFromGitHub with the hash of its archive.
func TestSrcGitAndForge(t *testing.T) {
	dir := t.TempDir()
	top := makeProject(t, dir)
	runIn(t, top, "git", "init", "-q", "-b", "main")
	runIn(t, top, "git", "add", "-A")
	runIn(t, top, "git", "commit", "-q", "-m", "init")
	runIn(t, top, "git", "tag", "-a", "-m", "v1", "v1.0.0")
	out, err := exec.Command("git", "-C", top, "rev-parse", "HEAD").Output()
	must(t, err)
	commit := strings.TrimSpace(string(out))

	// The tree nix-prefetch-git makes, by fetch/git, hashed by Nix.
	ck := filepath.Join(t.TempDir(), "ck")
	must(t, (&git.Fetcher{}).Checkout(context.Background(), "file://"+top, commit, ck))
	nix, feat := reftest.Nix(t)
	gitTree := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", ck)...)))

	// GitHub, on loopback: the archive as git archive writes it.
	archive := filepath.Join(t.TempDir(), "v1.tar.gz")
	runIn(t, top, "git", "archive", "--format=tar.gz", "--prefix=r-1.0.0/", "-o", archive, "v1.0.0")
	archiveHash := reftest.PrefetchUnpack(t, archive)
	served := map[string]bool{ // request URIs as each forge's fetcher builds them
		"/o/r/archive/refs/tags/v1.0.0.tar.gz":                                      true, // GitHub, Gitea
		"/o/r/archive/" + commit + ".tar.gz":                                        true,
		"/api/v4/projects/o%2Fr/repository/archive.tar.gz?sha=refs%2Ftags%2Fv1.0.0": true, // GitLab
		"/~o/r/archive/v1.0.0.tar.gz":                                               true, // sourcehut
	}
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served[r.URL.RequestURI()] {
			hits.Add(1)
			http.ServeFile(w, r, archive)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	rewrite := func(u string) string {
		switch u {
		case "https://github.com/o/r.git", "https://gitlab.com/o/r.git", "https://codeberg.org/o/r.git", "https://git.sr.ht/~o/r":
			return "file://" + top
		}
		for _, base := range []string{"https://github.com", "https://gitlab.com", "https://codeberg.org", "https://git.sr.ht"} {
			if rest, ok := strings.CutPrefix(u, base); ok {
				return srv.URL + rest
			}
		}
		return u
	}

	for _, c := range []struct {
		src, ref string
		opt      cargohash.SrcOptions
		fetcher  string
		args     string
		hash     string
	}{
		{"file://" + top, "main", cargohash.SrcOptions{}, "fetchgit", "url=file://" + top + " rev=" + commit, gitTree},
		{"file://" + top, "v1.0.0", cargohash.SrcOptions{}, "fetchgit", "url=file://" + top + " tag=v1.0.0", gitTree},
		{"o/r", "v1.0.0", cargohash.SrcOptions{}, "fetchFromGitHub", "owner=o repo=r tag=v1.0.0", archiveHash},
		{"https://github.com/o/r", commit, cargohash.SrcOptions{}, "fetchFromGitHub", "owner=o repo=r rev=" + commit, archiveHash},
		{"github:o/r", "main", cargohash.SrcOptions{}, "fetchFromGitHub", "owner=o repo=r rev=" + commit, archiveHash},
		{"o/r", "v1.0.0", cargohash.SrcOptions{Submodules: true}, "fetchFromGitHub", "owner=o repo=r tag=v1.0.0 fetchSubmodules=true", gitTree},
		{"https://github.com/o/r/releases/tag/v1.0.0", "", cargohash.SrcOptions{}, "fetchFromGitHub", "owner=o repo=r tag=v1.0.0", archiveHash},
		{"gitlab:o/r", "v1.0.0", cargohash.SrcOptions{}, "fetchFromGitLab", "owner=o repo=r tag=v1.0.0", archiveHash},
		{"https://codeberg.org/o/r", "v1.0.0", cargohash.SrcOptions{}, "fetchFromGitea", "domain=codeberg.org owner=o repo=r tag=v1.0.0", archiveHash},
		{"https://git.sr.ht/~o/r", "v1.0.0", cargohash.SrcOptions{}, "fetchFromSourcehut", "owner=~o repo=r tag=v1.0.0", archiveHash},
	} {
		c.opt.Ref, c.opt.Rewrite = c.ref, rewrite
		res, err := srcSession(t).Src(context.Background(), c.src, c.opt)
		if err != nil {
			t.Errorf("%s %s: %v", c.src, c.ref, err)
			continue
		}
		var args []string
		for _, a := range res.Args[:len(res.Args)-1] {
			if b, ok := a.Value.(bool); ok {
				args = append(args, a.Name+"="+map[bool]string{true: "true", false: "false"}[b])
			} else {
				args = append(args, a.Name+"="+a.Value.(string))
			}
		}
		if res.Fetcher != c.fetcher || strings.Join(args, " ") != c.args || res.Hash.String() != c.hash {
			t.Errorf("%s %s %+v:\n got %s { %s hash=%s }\nwant %s { %s hash=%s }", c.src, c.ref, c.opt.Submodules,
				res.Fetcher, strings.Join(args, " "), res.Hash, c.fetcher, c.args, c.hash)
		}
		if last := res.Args[len(res.Args)-1]; last.Name != "hash" || last.Value != res.Hash.String() {
			t.Errorf("%s: last argument %v, want the hash", c.src, last)
		}
	}
	if hits.Load() != 7 {
		t.Errorf("%d archives fetched from loopback, want 7", hits.Load())
	}

	_, err = srcSession(t).Src(context.Background(), "o/r", cargohash.SrcOptions{Ref: "v9", Rewrite: rewrite})
	if !errors.Is(err, git.ErrRefNotFound) {
		t.Errorf("missing tag: %v, want ErrRefNotFound", err)
	}
}

// TestSrcEndToEnd: an archive of a project with registry and git
// dependencies, served on loopback, gives the cargoHash and outputHashes
// prefetch gives for the same lock; --patch changes the lock first.
func TestSrcEndToEnd(t *testing.T) {
	w := newWorld(t)
	dir := t.TempDir()
	top := filepath.Join(dir, "demo-0.1.0")
	must(t, os.MkdirAll(filepath.Join(top, "src"), 0o755))
	must(t, os.WriteFile(filepath.Join(top, "Cargo.toml"), []byte("[package]\nname = \"demo\"\nversion = \"0.1.0\"\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(top, "src/main.rs"), []byte("fn main() {}\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(top, "Cargo.lock"), w.lock, 0o644))
	must(t, os.WriteFile(filepath.Join(top, "README.md"), []byte("a\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(top, "Readme.md"), []byte("b\n"), 0o644))
	archive := filepath.Join(t.TempDir(), "demo.tar.gz")
	runIn(t, dir, "tar", "--format=gnu", "-czf", archive, "demo-0.1.0")
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.ServeFile(rw, r, archive)
	}))
	defer srv.Close()

	want, err := w.session(t).Prefetch(context.Background(), writeLock(t, w.lock))
	must(t, err)
	var log bytes.Buffer
	w.opts.Log = &log
	res, err := w.session(t).Src(context.Background(), srv.URL+"/demo-0.1.0.tar.gz", cargohash.SrcOptions{})
	must(t, err)
	if res.Fetcher != "fetchzip" || res.Args[0].Value != srv.URL+"/demo-0.1.0.tar.gz" || res.Hash.String() != reftest.PrefetchUnpack(t, archive) {
		t.Errorf("source: %s %v", res.Fetcher, res.Args)
	}
	if !res.Cargo.CargoHash.Equal(want.CargoHash) || len(res.Cargo.OutputHashes) != len(want.OutputHashes) || len(want.OutputHashes) == 0 {
		t.Errorf("cargoHash %s outputHashes %v, prefetch says %s %v", res.Cargo.CargoHash, res.Cargo.OutputHashes, want.CargoHash, want.OutputHashes)
	}
	if !strings.Contains(log.String(), `"README.md" and "Readme.md"`) {
		t.Errorf("no portability warning for README.md/Readme.md in the log:\n%s", log.String())
	}

	// A cargoPatches file that changes the lock (a comment line: another
	// cargoHash, the same crates).
	b := filepath.Join(dir, "b")
	must(t, os.MkdirAll(b, 0o755))
	lockB := strings.Replace(string(w.lock), "# This file is automatically", "# patched. This file is automatically", 1)
	if lockB == string(w.lock) {
		lockB = "# patched\n" + string(w.lock)
	}
	must(t, os.WriteFile(filepath.Join(b, "Cargo.lock"), []byte(lockB), 0o644))
	diff, _ := exec.Command("diff", "-u", "--label", "a/Cargo.lock", "--label", "b/Cargo.lock", filepath.Join(top, "Cargo.lock"), filepath.Join(b, "Cargo.lock")).Output()
	patch := filepath.Join(dir, "lock.patch")
	must(t, os.WriteFile(patch, diff, 0o644))
	wantB, err := w.session(t).Prefetch(context.Background(), writeLock(t, []byte(lockB)))
	must(t, err)
	var gzPatch bytes.Buffer // the patch phase decompresses .gz (and .bz2, .xz, .lzma) patches
	zw := gzip.NewWriter(&gzPatch)
	zw.Write(diff)
	zw.Close()
	must(t, os.WriteFile(patch+".gz", gzPatch.Bytes(), 0o644))
	for _, p := range []string{patch, patch + ".gz"} {
		res, err = w.session(t).Src(context.Background(), srv.URL+"/demo-0.1.0.tar.gz", cargohash.SrcOptions{Patches: []string{p}})
		must(t, err)
		if !res.Cargo.CargoHash.Equal(wantB.CargoHash) || res.Cargo.CargoHash.Equal(want.CargoHash) {
			t.Errorf("patched with %s: cargoHash %s, want %s (unpatched %s)", filepath.Base(p), res.Cargo.CargoHash, wantB.CargoHash, want.CargoHash)
		}
	}
	// A local directory is patched in a copy: the user's lock stays.
	must(t, os.Symlink("src/main.rs", filepath.Join(top, "link")))
	res, err = w.session(t).Src(context.Background(), top, cargohash.SrcOptions{Patches: []string{patch}})
	must(t, err)
	if !res.Cargo.CargoHash.Equal(wantB.CargoHash) || res.Fetcher != "" {
		t.Errorf("local directory patched: %s %s, want %s", res.Fetcher, res.Cargo.CargoHash, wantB.CargoHash)
	}
	if data, _ := os.ReadFile(filepath.Join(top, "Cargo.lock")); !bytes.Equal(data, w.lock) {
		t.Error("patching a local directory changed its Cargo.lock")
	}
	_, err = w.session(t).Src(context.Background(), srv.URL+"/demo-0.1.0.tar.gz", cargohash.SrcOptions{Patches: []string{patch, patch}})
	if err == nil || !strings.Contains(err.Error(), "lock.patch") {
		t.Errorf("a patch applied twice: %v, want the patch phase's failure", err)
	}

	res, err = w.session(t).Src(context.Background(), srv.URL+"/demo-0.1.0.tar.gz", cargohash.SrcOptions{ImportCargoLock: true})
	must(t, err)
	if len(res.Cargo.OutputHashes) != len(want.OutputHashes) || res.LockFile != "Cargo.lock" {
		t.Errorf("import-cargo-lock: %v %s", res.Cargo.OutputHashes, res.LockFile)
	}
}

// TestSrcBadInput: each bad source is one error, not a hash.
func TestSrcBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, data, 0o644))
		return p
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	tw := tar.NewWriter(zw)
	must(t, tw.WriteHeader(&tar.Header{Name: "p/", Typeflag: tar.TypeDir, Mode: 0o755}))
	must(t, tw.WriteHeader(&tar.Header{Name: "p/Cargo.lock", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(rootLock))}))
	tw.Write([]byte(rootLock))
	must(t, tw.WriteHeader(&tar.Header{Name: "p/zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2 << 20}))
	tw.Write(make([]byte, 2<<20))
	tw.Close()
	zw.Close()
	good := gz.Bytes()
	var noLock bytes.Buffer
	zw = gzip.NewWriter(&noLock)
	tw = tar.NewWriter(zw)
	must(t, tw.WriteHeader(&tar.Header{Name: "p/README", Typeflag: tar.TypeReg, Mode: 0o644, Size: 2}))
	tw.Write([]byte("hi"))
	tw.Close()
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page.tar.gz" {
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<!DOCTYPE html><html><body>Sign in</body></html>"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()

	for _, c := range []struct {
		name, src string
		opt       cargohash.SrcOptions
		want      string
		is        error
	}{
		{"404", srv.URL + "/missing.tar.gz", cargohash.SrcOptions{}, "404 Not Found", fetch.ErrFetch},
		{"html", srv.URL + "/page.tar.gz", cargohash.SrcOptions{}, "an HTML page", nil},
		{"corrupt", "file://" + write("corrupt.tar.gz", good[:len(good)-12]), cargohash.SrcOptions{}, "unpacking", nil},
		{"bomb", "file://" + write("bomb.tar.gz", good), cargohash.SrcOptions{MaxSize: 1 << 20}, "unpacks to more than 1048576 bytes", nil},
		{"no lock", "file://" + write("nolock.tar.gz", noLock.Bytes()), cargohash.SrcOptions{}, "cargo generate-lockfile", cargohash.ErrNoLock},
		{"cargo root outside", "file://" + write("good.tar.gz", good), cargohash.SrcOptions{CargoRoot: "../x"}, "not a relative path", nil},
		{"not a source", "nonsense", cargohash.SrcOptions{}, "not a directory, archive URL", nil},
	} {
		_, err := srcSession(t).Src(context.Background(), c.src, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := srcSession(t).Src(context.Background(), "file://"+write("ok.tar.gz", good), cargohash.SrcOptions{}); err != nil {
		t.Errorf("the good archive: %v", err)
	}
}
