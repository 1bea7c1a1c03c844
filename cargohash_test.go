package cargohash_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/publish"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// gitRepo makes a repository with one commit of files, with fixed names and
// dates so that its SHA is stable, and returns its file:// URL and commit.
func gitRepo(t *testing.T, files map[string]string) (url, commit string) {
	return gitRepoBranch(t, "main", files)
}

func gitRepoBranch(t *testing.T, branch string, files map[string]string) (url, commit string) {
	t.Helper()
	gitBin := reftest.Need(t, "git")
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir,
		"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.org", "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
		"GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.org", "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z")
	for _, args := range [][]string{{"init", "-q", "-b", branch}, {"add", "-A"}, {"commit", "-q", "-m", "init"}} {
		cmd := exec.Command(gitBin, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	cmd := exec.Command(gitBin, "rev-parse", "HEAD")
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + dir, strings.TrimSpace(string(out))
}

// world is a lock with every kind of source, served on loopback.
type world struct {
	lock    []byte
	opts    cargohash.Options
	crates  map[string][]byte // tarball name → bytes
	commits []string
}

func newWorld(t *testing.T) *world {
	w := &world{crates: map[string][]byte{}}
	cratesIO := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	other := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{DL: "/dl/{prefix}/{lowerprefix}/{crate}/{version}/{sha256-checksum}.crate"})
	var pkgs []lockfile.Package
	pkgs = append(pkgs, lockfile.Package{Name: "demo", Version: "0.1.0"}) // local: skipped
	add := func(r *fetchtest.Registry, name, version string, cratesio bool) {
		data := fetchtest.Crate(name, version, map[string]string{"src/lib.rs": "// " + name + " " + version + "\n"})
		p := r.Add(name, version, data)
		if cratesio {
			p.Source, _ = lockfile.ParseSource(lockfile.CratesIORegistry)
		}
		pkgs = append(pkgs, p)
		w.crates[name+"-"+version+".tar.gz"] = data
	}
	add(cratesIO, "serde", "1.0.197", true)
	add(cratesIO, "serde", "1.0.100", true) // two versions of one crate
	add(cratesIO, "a", "0.1.0", true)
	add(other, "Ab", "1.0.0", false)
	add(other, "abc", "2.0.0", false)
	add(other, "XyZw-long", "0.3.0", false)
	url, commit := gitRepo(t, map[string]string{
		"Cargo.toml":        "[workspace]\nmembers = [\"g1\", \"g2\"]\n",
		"g1/Cargo.toml":     "[package]\nname = \"g1\"\nversion = \"0.1.0\"\n",
		"g1/src/lib.rs":     "",
		"g2/Cargo.toml":     "[package]\nname = \"g2\"\nversion = \"0.2.0\"\n",
		"g2/src/lib.rs":     "",
		"README with space": "hi\n",
	})
	w.commits = append(w.commits, commit)
	for _, sel := range []string{"?branch=main", "?rev=" + commit[:8]} { // two selectors, one commit
		src, err := lockfile.ParseSource("git+" + url + sel + "#" + commit)
		if err != nil {
			t.Fatal(err)
		}
		name := map[string]string{"?branch=main": "g1"}[sel]
		if name == "" {
			name = "g2"
		}
		pkgs = append(pkgs, lockfile.Package{Name: name, Version: map[string]string{"g1": "0.1.0", "g2": "0.2.0"}[name], Source: src})
	}
	// A v4 branch selector that needs URL-encoding: feature/x.
	url2, commit2 := gitRepoBranch(t, "feature/x", map[string]string{
		"crates/deep/Cargo.toml": "[package]\nname = \"deep\"\nversion = \"1.0.0\"\n",
		"crates/deep/src/lib.rs": "",
	})
	w.commits = append(w.commits, commit2)
	src, err := lockfile.ParseSource("git+" + url2 + "?branch=feature%2Fx#" + commit2)
	if err != nil || src.Ref.Value != "feature/x" {
		t.Fatalf("ParseSource: %v, %+v", err, src)
	}
	pkgs = append(pkgs, lockfile.Package{Name: "deep", Version: "1.0.0", Source: src})

	// A git-index registry: its config.json, at the index repository's
	// HEAD, points at the other registry's downloads.
	indexURL, _ := gitRepo(t, map[string]string{"config.json": `{"dl": "` + other.DL() + `"}` + "\n"})
	gidx := fetchtest.Crate("from-git-index", "0.1.0", map[string]string{"src/lib.rs": ""})
	p := other.Add("from-git-index", "0.1.0", gidx)
	p.Source, err = lockfile.ParseSource("registry+" + indexURL)
	if err != nil {
		t.Fatal(err)
	}
	pkgs = append(pkgs, p)
	w.crates["from-git-index-0.1.0.tar.gz"] = gidx

	w.lock = fetchtest.Lock(pkgs...)
	w.opts = cargohash.Options{Fetch: fetch.Options{
		CacheDir:    t.TempDir(),
		NoCargoHome: true,
		DL:          map[string]string{fetch.CratesIOAlias: cratesIO.DL()},
	}}
	return w
}

// session opens a Session on the world's registries, closed with the test.
func (w *world) session(t *testing.T) *cargohash.Session {
	t.Helper()
	s, err := cargohash.Open(w.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func writeLock(t *testing.T, data []byte) *lockfile.File {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "proj")
	os.Mkdir(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "Cargo.lock"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	lock, err := lockfile.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return lock
}

// TestStagingMatchesNix: prefetch's hash (computed without writing the
// tree) equals `nix hash path` of the tree staging writes, and that tree is
// exactly SPEC §3's.
func TestStagingMatchesNix(t *testing.T) {
	nix, feat := reftest.Nix(t)
	w := newWorld(t)
	lock := writeLock(t, w.lock)
	s := w.session(t)
	ctx := context.Background()
	res, err := s.Prefetch(ctx, lock)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "staging")
	res2, err := s.Staging(ctx, lock, out)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", out)...)))
	if res.CargoHash.String() != want || res2.CargoHash.String() != want {
		t.Fatalf("prefetch %v, staging %v; nix hash path of the staging tree: %s", res.CargoHash, res2.CargoHash, want)
	}
	if res.Crates != 7 || res.GitSources != 2 || len(res.OutputHashes) != 3 {
		t.Errorf("result %+v: want 7 crates, 2 git sources, 3 output hashes", res)
	}
	for crate, commit := range map[string]string{"g1-0.1.0": w.commits[0], "g2-0.2.0": w.commits[0], "deep-1.0.0": w.commits[1]} {
		tree := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", filepath.Join(out, "git", commit))...)))
		if h := res.OutputHashes[crate]; h.String() != tree {
			t.Errorf("outputHashes[%s] = %v, nix hash path of its tree = %s", crate, h, tree)
		}
	}

	// The tree holds exactly Cargo.lock, tarballs/* (0644, the crate bytes) and git/SHA/…
	var got []string
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(out, p)
		if rel == "." || strings.HasPrefix(rel, "git/") && strings.Count(rel, "/") > 1 {
			return err
		}
		info, _ := d.Info()
		got = append(got, rel+" "+info.Mode().String())
		return err
	})
	wantList := []string{"Cargo.lock -rw-r--r--", "git drwxr-xr-x", "tarballs drwxr-xr-x"}
	for _, c := range w.commits {
		wantList = append(wantList, "git/"+c+" drwxr-xr-x")
	}
	for name, data := range w.crates {
		wantList = append(wantList, "tarballs/"+name+" -rw-r--r--")
		if b, err := os.ReadFile(filepath.Join(out, "tarballs", name)); err != nil || string(b) != string(data) {
			t.Errorf("tarballs/%s: not the crate's bytes (%v)", name, err)
		}
	}
	sort.Strings(got)
	sort.Strings(wantList)
	if strings.Join(got, "\n") != strings.Join(wantList, "\n") {
		t.Errorf("staging tree:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantList, "\n"))
	}
	if b, _ := os.ReadFile(filepath.Join(out, "Cargo.lock")); string(b) != string(w.lock) {
		t.Errorf("Cargo.lock is not a byte copy")
	}
	if _, err := os.Stat(filepath.Join(out, "git", w.commits[0], ".git")); !os.IsNotExist(err) {
		t.Errorf(".git left in the checkout: %v", err)
	}
	// Staging replaces its own earlier output, and refuses a directory
	// holding anything else.
	again, err := s.Staging(ctx, lock, out)
	if err != nil || again.CargoHash != res2.CargoHash {
		t.Errorf("staging over its own earlier output: %v, %v; want %v", again, err, res2.CargoHash)
	}
	if err := os.WriteFile(filepath.Join(out, "notes.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Staging(ctx, lock, out); !errors.Is(err, publish.ErrRefused) || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("staging over a directory with notes.txt: %v", err)
	}
}

// lockVersion rewrites a version 4 lock as cargo would write version v:
// before 4, git selectors are not URL-encoded; 3 and 2 differ in the version
// key only; 1 moves the checksums into [metadata].
func lockVersion(t *testing.T, v4 []byte, v int) []byte {
	t.Helper()
	if v == 4 {
		return v4
	}
	raw := strings.ReplaceAll(string(v4), "%2F", "/")
	text := strings.Replace(raw, "version = 4\n", "", 1)
	switch v {
	case 3:
		return []byte(strings.Replace(raw, "version = 4\n", "version = 3\n", 1))
	case 2:
		return []byte(text)
	}
	lf, err := lockfile.Parse("Cargo.lock", v4)
	if err != nil {
		t.Fatal(err)
	}
	var meta []string
	for _, p := range lf.Packages {
		if p.Checksum != "" {
			text = strings.Replace(text, "checksum = \""+p.Checksum+"\"\n", "", 1)
			meta = append(meta, fmt.Sprintf("\"checksum %s %s (%s)\" = \"%s\"", p.Name, p.Version, p.Source.Raw, p.Checksum))
		}
	}
	return []byte(text + "\n[metadata]\n" + strings.Join(meta, "\n") + "\n")
}

// TestLockVersions: locks of versions 1 to 4 for the same crates each
// prefetch to the hash Nix gives their staging tree.
func TestLockVersions(t *testing.T) {
	nix, feat := reftest.Nix(t)
	w := newWorld(t)
	s := w.session(t)
	for v := 1; v <= 4; v++ {
		data := lockVersion(t, w.lock, v)
		lock := writeLock(t, data)
		if lock.Version != v {
			t.Fatalf("rewritten lock reads as version %d, want %d:\n%s", lock.Version, v, data)
		}
		res, err := s.Prefetch(context.Background(), lock)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		out := filepath.Join(t.TempDir(), "staging")
		if _, err := s.Staging(context.Background(), lock, out); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		want := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", out)...)))
		if res.CargoHash.String() != want || res.Crates != 7 || res.GitSources != 2 {
			t.Errorf("v%d: prefetch %v (%d crates, %d git), nix hash path of staging %s", v, res.CargoHash, res.Crates, res.GitSources, want)
		}
	}
}

// TestStagingLeavesNothingOnFailure: a crate that cannot be fetched leaves
// no output and no temporary directory.
func TestStagingLeavesNothingOnFailure(t *testing.T) {
	w := newWorld(t)
	w.opts.Fetch.Retries = -1
	bad := strings.Replace(string(w.lock), `name = "a"`, `name = "missing"`, 1)
	lock := writeLock(t, []byte(bad))
	s := w.session(t)
	parent := t.TempDir()
	_, err := s.Staging(context.Background(), lock, filepath.Join(parent, "out"))
	if err == nil || !strings.Contains(err.Error(), "missing@0.1.0") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("error = %v, want a 404 naming missing@0.1.0", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}

// TestTarballWithGitCrates: git crates go into the streamed tarball too,
// found by name in their checkouts.
func TestTarballWithGitCrates(t *testing.T) {
	tarBin := reftest.Need(t, "tar")
	w := newWorld(t)
	lock := writeLock(t, w.lock)
	s := w.session(t)
	out := filepath.Join(t.TempDir(), "w.tar.zst")
	if _, err := s.Tarball(context.Background(), lock, out, "w"); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(tarBin, "--zstd", "-tf", out).Output()
	if err != nil {
		t.Fatalf("tar -t: %v", err)
	}
	for _, want := range []string{"w-vendor/g1/Cargo.toml", "w-vendor/g2/.cargo-checksum.json", "w-vendor/deep/Cargo.toml", "w-vendor/serde-1.0.100/src/lib.rs", "w-vendor/Cargo.lock", "w-vendor/.cargo/config.toml"} {
		if !strings.Contains(string(list), want+"\n") {
			t.Errorf("tarball lacks %s:\n%s", want, list)
		}
	}
}

// TestHashPathCancel: cancelling while a 12 GiB file is hashed (sparse: no
// disk used) ends HashPath with context.Canceled instead of the hash.
func TestHashPathCancel(t *testing.T) {
	big := reftest.SparseFile(t, 12<<30)
	ctx, cancel := context.WithCancel(context.Background())
	go cancel() // while HashPath runs, or before it starts: either way
	h, err := cargohash.HashPath(ctx, big, nixhash.SHA256)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("HashPath = %v, %v; want context.Canceled", h, err)
	}
}
