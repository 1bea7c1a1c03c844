package git

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cargohash/cargohash/internal/reftest"
)

func truncateHalf(t testing.TB, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// TestCacheDamage damages a warm cache (a commit with submodules two deep:
// three repositories) in every way a killed process, a full disk or a
// careless hand can, one damage at a time, and checks out again: the tree
// is the one the intact cache gave, each damaged repository costs one line
// on the log, and the next checkout needs neither the network nor a
// repair. It runs with the objects as fetched (loose) and repacked.
func TestCacheDamage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	url, commit := srv.url("main"), w.commits["M1"]
	checkout := func(t *testing.T, cache string, offline bool) (tree map[string]string, log string) {
		t.Helper()
		var buf bytes.Buffer
		f := &Fetcher{CacheDir: cache, Log: &buf, Offline: offline}
		dest := filepath.Join(t.TempDir(), "out")
		if err := f.Checkout(testCtx(t), url, commit, dest); err != nil {
			t.Fatalf("checkout: %v\nlog:\n%s", err, buf.String())
		}
		return reftest.Snapshot(t, dest), buf.String()
	}

	for _, repack := range []bool{false, true} {
		t.Run(map[bool]string{false: "loose", true: "packed"}[repack], func(t *testing.T) {
			warm := t.TempDir()
			golden, _ := checkout(t, warm, false)
			repos, _ := filepath.Glob(filepath.Join(warm, "*.git"))
			if len(repos) != 3 {
				t.Fatalf("warm cache holds %v, want three repositories", repos)
			}
			if repack {
				for _, r := range repos {
					runGit(t, testEnv(t.TempDir()), r, "--git-dir=.", "repack", "-q", "-a", "-d")
				}
			}
			type damage struct {
				name string
				do   func(t *testing.T, cache string)
				// again: check out once more, which must need neither
				// the network nor a repair (not for every file: time)
				again bool
			}
			var cases []damage
			files := reftest.Files(t, warm)
			for _, f := range files {
				loose := strings.Contains(f, "/objects/") && !strings.Contains(f, "/objects/pack/")
				cases = append(cases, damage{name: "flip-middle/" + f, do: func(t *testing.T, c string) { reftest.FlipByte(t, filepath.Join(c, f), -1) }})
				if !loose { // loose objects are alike: truncate-all below covers them
					cases = append(cases, damage{name: "truncate/" + f, do: func(t *testing.T, c string) { truncateHalf(t, filepath.Join(c, f)) }})
				}
				if strings.Contains(f, "/objects/pack/") { // headers, fan-out tables and checksum trailers
					cases = append(cases,
						damage{name: "flip-12/" + f, do: func(t *testing.T, c string) { reftest.FlipByte(t, filepath.Join(c, f), 12) }},
						damage{name: "flip-last/" + f, do: func(t *testing.T, c string) { reftest.FlipByte(t, filepath.Join(c, f), 1<<40) }},
					)
				}
			}
			cases = append(cases,
				damage{again: true, name: "flip-all", do: func(t *testing.T, c string) {
					for _, f := range files {
						reftest.FlipByte(t, filepath.Join(c, f), 7)
					}
				}},
				damage{again: true, name: "truncate-all", do: func(t *testing.T, c string) {
					for _, f := range files {
						os.Chmod(filepath.Join(c, f), 0o644)
						os.Truncate(filepath.Join(c, f), 0)
					}
				}},
				damage{again: true, name: "repository-is-a-file", do: func(t *testing.T, c string) {
					r := filepath.Join(c, filepath.Base(repos[0]))
					os.RemoveAll(r)
					os.WriteFile(r, []byte("not a repository\n"), 0o644)
				}},
				damage{again: true, name: "lock-is-a-directory", do: func(t *testing.T, c string) {
					l := filepath.Join(c, filepath.Base(repos[0])+".lock")
					os.Remove(l)
					os.MkdirAll(filepath.Join(l, "x"), 0o755)
				}},
				damage{again: true, name: "lock-is-a-dangling-symlink", do: func(t *testing.T, c string) {
					l := filepath.Join(c, filepath.Base(repos[0])+".lock")
					os.Remove(l)
					os.Symlink(filepath.Join(c, "nowhere", "x"), l)
				}},
				damage{again: true, name: "stale-init", do: func(t *testing.T, c string) {
					r := filepath.Join(c, filepath.Base(repos[0]))
					os.Rename(r, r+".tmp") // killed between git init and the rename
				}},
			)
			if repack {
				cases = append(cases, damage{again: true, name: "remove-packs", do: func(t *testing.T, c string) {
					packs, _ := filepath.Glob(filepath.Join(c, "*.git", "objects", "pack", "*.pack"))
					for _, p := range packs {
						os.Remove(p)
					}
				}})
			} else { // shapes, on the top repository (the others' files are damaged above)
				base := filepath.Base(repoPath(warm, url))
				for _, e := range []string{"HEAD", "config", "objects", "refs", "shallow", "refs/cargohash", "objects/pack"} {
					cases = append(cases, damage{again: true, name: "remove/" + base + "/" + e, do: func(t *testing.T, c string) {
						os.RemoveAll(filepath.Join(c, base, e))
					}})
				}
				for _, e := range []string{"HEAD", "config"} {
					cases = append(cases, damage{again: true, name: "dir-for-file/" + base + "/" + e, do: func(t *testing.T, c string) {
						p := filepath.Join(c, base, e)
						os.Remove(p)
						os.MkdirAll(filepath.Join(p, "x"), 0o755)
					}})
				}
				// Files git cannot read, in a layout that looks whole.
				for name, e := range map[string]struct{ file, content string }{
					"empty-HEAD":          {"HEAD", ""},
					"garbage-config":      {"config", "[[[\n"},
					"garbage-packed-refs": {"packed-refs", "garbage\n"},
					"pack-dir-is-a-file":  {"objects/pack", "x"},
				} {
					cases = append(cases, damage{again: true, name: name + "/" + base, do: func(t *testing.T, c string) {
						p := filepath.Join(c, base, e.file)
						os.RemoveAll(p)
						os.WriteFile(p, []byte(e.content), 0o644)
					}})
				}
				cases = append(cases, damage{again: true, name: "fifo-for-HEAD/" + base, do: func(t *testing.T, c string) {
					p := filepath.Join(c, base, "HEAD")
					os.Remove(p)
					if err := syscall.Mkfifo(p, 0o644); err != nil {
						t.Fatal(err)
					}
				}})
				for _, l := range []string{"shallow.lock", "config.lock", "HEAD.lock", "packed-refs.lock", "refs/cargohash/" + commit + ".lock", "objects/info/commit-graph.lock"} {
					cases = append(cases, damage{again: true, name: "stale-lock/" + base + "/" + l, do: func(t *testing.T, c string) {
						p := filepath.Join(c, base, l)
						os.MkdirAll(filepath.Dir(p), 0o755)
						os.WriteFile(p, nil, 0o644)
					}})
				}
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					cache := filepath.Join(t.TempDir(), "cache")
					if err := os.CopyFS(cache, os.DirFS(warm)); err != nil {
						t.Fatal(err)
					}
					tc.do(t, cache)
					got, log := checkout(t, cache, false)
					if !maps.Equal(got, golden) {
						t.Fatalf("checkout from the damaged cache differs from the golden tree\nlog:\n%s", log)
					}
					notes := reftest.LinesWith(log, "git cache: ")
					seen := map[string]bool{}
					for _, n := range notes {
						url, _, _ := strings.Cut(strings.TrimPrefix(n, "git cache: "), ": ")
						if seen[url] {
							t.Errorf("two notes for %s:\n%s", url, log)
						}
						seen[url] = true
					}
					// One download a repository: damage is found before
					// fetching into it, not after.
					fetches := map[string]int{}
					for _, l := range reftest.LinesWith(log, "fetching ") {
						url, _, _ := strings.Cut(strings.TrimPrefix(l, "fetching "), " @ ")
						if fetches[url]++; fetches[url] > 1 || strings.Contains(l, "failed") {
							t.Errorf("fetched %s more than once:\n%s", url, log)
						}
					}
					if !tc.again {
						return
					}
					// Offline: the repair lasted, no network needed.
					if got, log := checkout(t, cache, true); !maps.Equal(got, golden) || len(reftest.LinesWith(log, "git cache: ")) != 0 {
						t.Errorf("second checkout, offline: same tree %v, log:\n%s", maps.Equal(got, golden), log)
					}
				})
			}
		})
	}
}

// TestCacheSubstitutedObject puts one object's bytes under another
// object's name: a well-formed object git's checkout would write without a
// word. The checkout must not use it.
func TestCacheSubstitutedObject(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	ctx := testCtx(t)
	url, commit := srv.url("main"), w.commits["M3"]
	cache := t.TempDir()
	var log bytes.Buffer
	f := &Fetcher{CacheDir: cache, Log: &log}
	first := filepath.Join(t.TempDir(), "out")
	if err := f.Checkout(ctx, url, commit, first); err != nil {
		t.Fatal(err)
	}
	repo := repoPath(cache, url)
	env := testEnv(t.TempDir())
	// Fetches keep what they receive as a pack; caches written before
	// that hold loose objects, which is where one object can stand in
	// for another: explode the pack into them.
	packs, _ := filepath.Glob(filepath.Join(repo, "objects", "pack", "*.pack"))
	for _, pack := range packs {
		moved := filepath.Join(t.TempDir(), "p.pack")
		if err := os.Rename(pack, moved); err != nil {
			t.Fatal(err)
		}
		os.Remove(strings.TrimSuffix(pack, ".pack") + ".idx")
		in, err := os.Open(moved)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("git", "--git-dir=.", "unpack-objects", "-q")
		cmd.Dir, cmd.Env, cmd.Stdin = repo, env, in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git unpack-objects: %v\n%s", err, out)
		}
		in.Close()
	}
	readme := runGit(t, env, repo, "--git-dir=.", "rev-parse", commit+":README.md")
	lib := runGit(t, env, repo, "--git-dir=.", "rev-parse", commit+":crates/foo/src/lib.rs")
	obj := func(id string) string { return filepath.Join(repo, "objects", id[:2], id[2:]) }
	if _, err := os.Stat(obj(readme)); err != nil {
		t.Fatalf("expected loose objects: %v", err)
	}
	data, err := os.ReadFile(obj(lib))
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(obj(readme), 0o644)
	if err := os.WriteFile(obj(readme), data, 0o444); err != nil {
		t.Fatal(err)
	}
	second := filepath.Join(t.TempDir(), "out")
	if err := f.Checkout(ctx, url, commit, second); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(reftest.Snapshot(t, first), reftest.Snapshot(t, second)) {
		t.Fatalf("checkout used the substituted object")
	}
	if n := reftest.LinesWith(log.String(), "git cache: "); len(n) != 1 || !strings.Contains(n[0], readme) {
		t.Errorf("notes %q, want one naming %s", n, readme)
	}
}

// TestCacheNetworkErrorKeepsRepository: a fetch that fails because the
// remote is gone is not damage; the repository and its other commits stay.
func TestCacheNetworkErrorKeepsRepository(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	ctx := testCtx(t)
	url := srv.url("main")
	cache := t.TempDir()
	var log bytes.Buffer
	f := &Fetcher{CacheDir: cache, Log: &log}
	if err := f.Checkout(ctx, url, w.commits["M3"], filepath.Join(t.TempDir(), "out")); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if err := f.Checkout(ctx, url, w.commits["F1"], filepath.Join(t.TempDir(), "out")); err == nil {
		t.Fatal("checkout of an uncached commit with the remote gone succeeded")
	}
	if n := reftest.LinesWith(log.String(), "git cache: "); len(n) != 0 {
		t.Errorf("a network error was taken for damage: %q", n)
	}
	off := &Fetcher{CacheDir: cache, Offline: true}
	if err := off.Checkout(ctx, url, w.commits["M3"], filepath.Join(t.TempDir(), "out")); err != nil {
		t.Errorf("the cached commit is gone after a network error: %v", err)
	}
}

// TestCheckoutAnnotatedTagID: an annotated tag's id checks out the commit
// it names (git checkout peels it), its own bytes verified with the rest.
func TestCheckoutAnnotatedTagID(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := testCtx(t)
	tag := runGit(t, testEnv(t.TempDir()), filepath.Join(w.root, "main.git"), "--git-dir=.", "rev-parse", "v1")
	if tag == w.commits["M1"] {
		t.Fatal("v1 is not an annotated tag")
	}
	f := &Fetcher{CacheDir: t.TempDir(), AllowFileSubmodules: true}
	byTag, byCommit := filepath.Join(t.TempDir(), "tag"), filepath.Join(t.TempDir(), "commit")
	if err := f.Checkout(ctx, w.fileURL("main"), tag, byTag); err != nil {
		t.Fatal(err)
	}
	if err := f.Checkout(ctx, w.fileURL("main"), w.commits["M1"], byCommit); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(reftest.Snapshot(t, byTag), reftest.Snapshot(t, byCommit)) {
		t.Error("the tag's checkout differs from its commit's")
	}
}

// TestCacheStaleGitLocks: lock files a killed git left in a repository
// matter when git fetches the next commit into it (file://); that fetch
// succeeds, after one note. An in-process fetch (http://) does not take
// git's locks: the repository's own lock keeps every git of ours out.
func TestCacheStaleGitLocks(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	for _, tr := range []struct{ name, url string }{{"git", w.fileURL("main")}, {"in process", srv.url("main")}} {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			url := tr.url
			warm := t.TempDir()
			if err := (&Fetcher{CacheDir: warm, AllowFileSubmodules: true}).Checkout(testCtx(t), url, w.commits["M3"], filepath.Join(t.TempDir(), "out")); err != nil {
				t.Fatal(err)
			}
			repo := filepath.Base(repoPath(warm, url))
			for _, l := range []string{"shallow.lock", "config.lock", "HEAD.lock", "packed-refs.lock", "refs/cargohash/" + w.commits["F1"] + ".lock", "objects/info/commit-graph.lock"} {
				t.Run(l, func(t *testing.T) {
					t.Parallel()
					cache := filepath.Join(t.TempDir(), "cache")
					if err := os.CopyFS(cache, os.DirFS(warm)); err != nil {
						t.Fatal(err)
					}
					p := filepath.Join(cache, repo, l)
					os.MkdirAll(filepath.Dir(p), 0o755)
					os.WriteFile(p, nil, 0o644)
					var log bytes.Buffer
					dest := filepath.Join(t.TempDir(), "out")
					if err := (&Fetcher{CacheDir: cache, Log: &log, AllowFileSubmodules: true}).Checkout(testCtx(t), url, w.commits["F1"], dest); err != nil {
						t.Fatalf("%v\nlog:\n%s", err, log.String())
					}
					if _, err := os.Stat(filepath.Join(dest, "feature.txt")); err != nil {
						t.Error(err)
					}
					// shallow and the new ref are what a depth-1 fetch must update.
					blocks := tr.name == "git" && (l == "shallow.lock" || strings.HasPrefix(l, "refs/"))
					n := reftest.LinesWith(log.String(), "git cache: ")
					switch {
					case blocks && len(n) != 1:
						t.Errorf("notes %q, want exactly one", n)
					case !blocks && tr.name == "git" && len(n) > 1:
						t.Errorf("notes %q, want at most one", n)
					case tr.name != "git" && len(n) != 0:
						t.Errorf("notes %q, want none", n)
					}
				})
			}
		})
	}
}

// TestCheckoutTreeIDKeepsCache: an id that names a tree is the caller's
// mistake: the error says so, and the repository, with the commits
// fetched before, stays (no note, no new fetch for them).
func TestCheckoutTreeIDKeepsCache(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	url := srv.url("main")
	var log bytes.Buffer
	f := &Fetcher{CacheDir: t.TempDir(), Log: &log}
	if err := f.Checkout(testCtx(t), url, w.commits["M3"], filepath.Join(t.TempDir(), "out")); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a killed fetch go with the next fetch into the repository.
	repo := repoPath(f.CacheDir, url)
	for _, p := range []string{"objects/pack/tmp_pack_x", "objects/pack/tmp_idx_x", "cargohash-tmp-x"} {
		os.WriteFile(filepath.Join(repo, p), nil, 0o644)
	}
	tree := runGit(t, testEnv(t.TempDir()), filepath.Join(w.root, "main.git"), "--git-dir=.", "rev-parse", w.commits["M3"]+"^{tree}") // in the cache already
	err := f.Checkout(testCtx(t), url, tree, filepath.Join(t.TempDir(), "out"))
	if err == nil || !strings.Contains(err.Error(), "is a tree, not a commit") {
		t.Fatalf("err = %v", err)
	}
	for _, p := range []string{"objects/pack/tmp_pack_x", "objects/pack/tmp_idx_x", "cargohash-tmp-x"} {
		if _, err := os.Lstat(filepath.Join(repo, p)); err == nil {
			t.Errorf("%s left", p)
		}
	}
	log.Reset()
	requests := srv.requests.Load()
	if err := f.Checkout(testCtx(t), url, w.commits["M3"], filepath.Join(t.TempDir(), "out")); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load() - requests; n != 0 || strings.Contains(log.String(), "git cache: ") {
		t.Errorf("%d requests after the tree's error; log:\n%s", n, log.String())
	}
}
