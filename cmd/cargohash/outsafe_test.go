package main

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/publish"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// outWriter is a command that writes --out.
type outWriter struct {
	name   string
	kind   string // the kind of output: nixpkgs, cargo, staging or tarball
	suffix string // what --out must end with
	args   []string
}

var outWriters = []outWriter{
	{"vendor nixpkgs", "nixpkgs", "", []string{"vendor", "--layout", "nixpkgs"}},
	{"vendor cargo", "cargo", "", []string{"vendor", "--layout", "cargo"}},
	{"staging", "staging", "", []string{"staging"}},
	{"tarball gz", "tarball", ".tar.gz", []string{"tarball"}},
	{"tarball zst", "tarball", ".tar.zst", []string{"tarball"}},
	{"tarball", "tarball", ".tar", []string{"tarball"}},
}

// outWorld is a project in a directory tree the test snapshots whole.
type outWorld struct {
	root string // everything the test makes, but the cache
	anc  string // root/anc: an ancestor of proj
	proj string // root/anc/proj: Cargo.toml, Cargo.lock, src/main.rs
}

func newOutWorld(t *testing.T, lock []byte, suffix string) outWorld {
	root := t.TempDir()
	w := outWorld{root: root, anc: filepath.Join(root, "anc"+suffix)}
	w.proj = filepath.Join(w.anc, "proj"+suffix)
	for name, data := range map[string]string{
		"Cargo.toml":  "[package]\nname = \"proj\"\nversion = \"0.1.0\"\n",
		"Cargo.lock":  string(lock),
		"src/main.rs": "fn main() {}\n",
	} {
		fetchtest.WriteFile(t, filepath.Join(w.proj, name), []byte(data))
	}
	fetchtest.WriteFile(t, filepath.Join(root, "precious.txt"), []byte("mine"))
	if err := os.Mkdir(filepath.Join(root, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

// under reports whether rel is dir or inside it ("" matches nothing).
func under(rel, dir string) bool {
	return dir != "" && (rel == dir || strings.HasPrefix(rel, dir+string(filepath.Separator)))
}

// diffSnapshots lists the paths that differ, leaving out those under skip.
func diffSnapshots(before, after map[string]string, skip string) []string {
	var diff []string
	for p, v := range before {
		if !under(p, skip) && after[p] != v {
			diff = append(diff, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !under(p, skip) {
			diff = append(diff, p)
		}
	}
	sort.Strings(diff)
	return diff
}

// copyTree copies src to dst; with times, as `cp -a` does (modification
// times kept), else as `cp -r` does.
func copyTree(t *testing.T, src, dst string, times bool) {
	t.Helper()
	var stamps []string // copied entries whose time to set, parents after their entries
	defer func() {
		for i := len(stamps) - 1; i >= 0; i-- {
			fi, err := os.Lstat(filepath.Join(src, stamps[i]))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(filepath.Join(dst, stamps[i]), fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}
	}()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if times && d.Type()&fs.ModeSymlink == 0 {
			stamps = append(stamps, rel)
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		case d.IsDir():
			return os.Mkdir(to, fi.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// deepFile is the first regular file (in walk order) below the top two
// levels of tree, or, in a tree without one, the first at the second
// level: a crate's own file.
func deepFile(t *testing.T, tree string) string {
	t.Helper()
	var second, deep string
	filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || deep != "" {
			return err
		}
		rel, _ := filepath.Rel(tree, p)
		switch n := strings.Count(rel, string(filepath.Separator)); {
		case n >= 2 && filepath.Base(rel) != ".cargo-checksum.json":
			deep = rel
		case n == 1 && second == "":
			second = rel
		}
		return nil
	})
	if deep == "" {
		deep = second
	}
	if deep == "" {
		t.Fatalf("no file below the top of %s", tree)
	}
	return deep
}

// outLock serves crates on loopback (two versions of one name, so the
// cargo layout has NAME and NAME-VERSION directories) and returns a lock
// with a local root package naming them.
func outLock(t *testing.T) (*fetchtest.Registry, []byte) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	pkgs := []lockfile.Package{{Name: "proj", Version: "0.1.0"}}
	for _, nv := range [][2]string{{"serde", "1.0.197"}, {"serde", "1.0.100"}, {"memchr", "2.7.4"}} {
		pkgs = append(pkgs, reg.AddCrate(nv[0], nv[1], map[string]string{"src/lib.rs": "// " + nv[0] + "\n"}))
	}
	return reg, fetchtest.Lock(pkgs...)
}

// writeArgs are w's arguments to write out from lock, with progress on
// (a refusal must still be the only line on stderr).
func writeArgs(t *testing.T, w outWriter, out, lock string) []string {
	args := append(append([]string{}, w.args...), "--out", out)
	for _, a := range fast(t, lock) {
		if a != "--quiet" {
			args = append(args, a)
		}
	}
	return args
}

// TestOutputSafety runs every writer through the CLI on every shape of
// --out: what exists is replaced only when it is empty or the writer's own
// earlier output (a vendor tarball, for a tarball); anything else is refused
// with exit 2, one line on stderr and nothing on stdout, and nothing
// outside the output changes or is left behind.
func TestOutputSafety(t *testing.T) {
	_, lock := outLock(t)

	// What each kind writes, made once: the reference for the written
	// outputs and the "earlier output" of the shapes.
	refs := map[string]string{}
	for _, w := range outWriters {
		if _, ok := refs[w.kind+w.suffix]; ok {
			continue
		}
		world := newOutWorld(t, lock, w.suffix)
		out := filepath.Join(t.TempDir(), "ref"+w.suffix)
		if _, errOut, code := runCLI(t, writeArgs(t, w, out, world.proj)...); code != 0 {
			t.Fatalf("%s: exit %d: %s", w.name, code, errOut)
		}
		refs[w.kind+w.suffix] = out
		refs[w.kind] = out
	}
	dirKinds := []string{"nixpkgs", "cargo", "staging"}
	// A foreign entry below the top of each kind's tree.
	deepForeign := map[string]string{
		"nixpkgs": "source-registry/notes.txt",
		"cargo":   "notes/readme.txt",
		"staging": "tarballs/notes.txt",
	}

	type shape struct {
		name  string
		setup func(t *testing.T, w outWriter, world outWorld) string // returns --out
		ok    func(w outWriter) bool                                 // written (else refused)
	}
	always := func(outWriter) bool { return true }
	never := func(outWriter) bool { return false }
	dirsOnly := func(w outWriter) bool { return w.kind != "tarball" }
	outPath := func(w outWriter, world outWorld) string { return filepath.Join(world.root, "out"+w.suffix) }
	// earlier copies the earlier output of w's kind (a staging tree for a
	// tarball, where a tree does not belong) to w's --out, with or without
	// its times, and returns --out and the kind copied.
	earlier := func(t *testing.T, w outWriter, world outWorld, times bool) (string, string) {
		out, kind := outPath(w, world), w.kind
		if kind == "tarball" {
			kind = "staging"
		}
		copyTree(t, refs[kind], out, times)
		return out, kind
	}
	shapes := []shape{
		{"missing", func(t *testing.T, w outWriter, world outWorld) string { return outPath(w, world) }, always},
		{"empty dir", func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			os.Mkdir(out, 0o755)
			return out
		}, dirsOnly},
		{"own earlier output", func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			if w.kind == "tarball" {
				data, _ := os.ReadFile(refs[w.kind+w.suffix])
				fetchtest.WriteFile(t, out, data)
			} else {
				copyTree(t, refs[w.kind], out, true)
			}
			return out
		}, always},
		{"own earlier output plus a foreign entry", func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			if w.kind == "tarball" {
				copyTree(t, refs["nixpkgs"], out, true)
				fetchtest.WriteFile(t, filepath.Join(out, "notes.txt"), []byte("mine"))
			} else {
				copyTree(t, refs[w.kind], out, true)
				fetchtest.WriteFile(t, filepath.Join(out, "notes.txt"), []byte("mine"))
			}
			return out
		}, never},
		{"own earlier output with a foreign entry inside", func(t *testing.T, w outWriter, world outWorld) string {
			out, kind := earlier(t, w, world, true)
			fetchtest.WriteFile(t, filepath.Join(out, deepForeign[kind]), []byte("mine"))
			return out
		}, never},
		{"own earlier output with a file edited inside", func(t *testing.T, w outWriter, world outWorld) string {
			out, _ := earlier(t, w, world, true)
			f, err := os.OpenFile(filepath.Join(out, deepFile(t, out)), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("// a patch\n")
			f.Close()
			return out
		}, never},
		{"own earlier output copied without its times", func(t *testing.T, w outWriter, world outWorld) string {
			out, _ := earlier(t, w, world, false)
			return out
		}, func(w outWriter) bool { return w.kind == "cargo" }}, // only its .cargo-checksum.json files vouch for it
		{"dir with a foreign file", func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			fetchtest.WriteFile(t, filepath.Join(out, "notes.txt"), []byte("mine"))
			return out
		}, never},
		{"dot", func(t *testing.T, w outWriter, world outWorld) string {
			t.Chdir(world.proj)
			return "."
		}, never},
		{"the lock's directory", func(t *testing.T, w outWriter, world outWorld) string { return world.proj }, never},
		{"an ancestor of the lock", func(t *testing.T, w outWriter, world outWorld) string { return world.anc }, never},
		{"an ancestor of the working directory", func(t *testing.T, w outWriter, world outWorld) string {
			sub := filepath.Join(world.root, "wd"+w.suffix, "sub")
			os.MkdirAll(sub, 0o755)
			t.Chdir(sub)
			return ".." // empty but for the working directory
		}, never},
		{"a regular file", func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			fetchtest.WriteFile(t, out, []byte("mine"))
			return out
		}, never},
		{"a tarball cut short", func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			data, _ := os.ReadFile(refs["tarball"+w.suffix])
			if data == nil {
				data, _ = os.ReadFile(refs["tarball"])
			}
			fetchtest.WriteFile(t, out, data[:len(data)/2])
			return out
		}, never},
		{"a symlink to a dir", func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			os.Symlink("emptydir", out)
			return out
		}, never},
		{"a symlink to a file", func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			os.Symlink("precious.txt", out)
			return out
		}, never},
		{"a dangling symlink", func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			os.Symlink("nowhere", out)
			return out
		}, never},
		{"a missing parent", func(t *testing.T, w outWriter, world outWorld) string {
			return filepath.Join(world.root, "missing", "out"+w.suffix)
		}, never},
		{"a parent that is a file", func(t *testing.T, w outWriter, world outWorld) string {
			return filepath.Join(world.root, "precious.txt", "out"+w.suffix)
		}, never},
	}
	for _, other := range dirKinds {
		shapes = append(shapes, shape{"own output of kind " + other, func(t *testing.T, w outWriter, world outWorld) string {
			out := outPath(w, world)
			copyTree(t, refs[other], out, true)
			return out
		}, func(w outWriter) bool { return w.kind == other }})
	}

	for _, w := range outWriters {
		t.Run(w.name, func(t *testing.T) {
			for _, sh := range shapes {
				t.Run(sh.name, func(t *testing.T) {
					world := newOutWorld(t, lock, w.suffix)
					out := sh.setup(t, w, world)
					before := reftest.Snapshot(t, world.root)
					stdout, stderr, code := runCLI(t, writeArgs(t, w, out, world.proj)...)
					after := reftest.Snapshot(t, world.root)
					for p := range after {
						if publish.IsTemp(filepath.Base(p)) {
							t.Errorf("temporary name left behind: %s", p)
						}
					}
					if !sh.ok(w) {
						t.Log(strings.TrimSpace(stderr))
						if code != exitInput || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, out) {
							t.Errorf("exit %d, stdout %q, stderr %q; want exit 2, no stdout, one line naming %s", code, stdout, stderr, out)
						}
						if d := diffSnapshots(before, after, ""); len(d) > 0 {
							t.Errorf("refused, but changed: %v", d)
						}
						return
					}
					if code != 0 {
						t.Fatalf("exit %d: %s", code, stderr)
					}
					abs, _ := filepath.Abs(out)
					rel, _ := filepath.Rel(world.root, abs)
					if d := diffSnapshots(before, after, rel); len(d) > 0 {
						t.Errorf("changed outside %s: %v", rel, d)
					}
					got, want := reftest.Snapshot(t, abs), reftest.Snapshot(t, refs[w.kind+w.suffix])
					if d := diffSnapshots(want, got, ""); len(d) > 0 {
						t.Errorf("%s differs from a fresh output: %v", out, d)
					}
				})
			}
		})
	}
}

// TestOutputCancelled: Ctrl-C (the context cancelled) while a writer
// fetches leaves nothing behind, and an earlier output as it was.
func TestOutputCancelled(t *testing.T) {
	reg, lock := outLock(t)
	stalled := reg.CratePath("serde", "1.0.197")
	for _, w := range outWriters {
		for _, earlier := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s earlier=%v", w.name, earlier), func(t *testing.T) {
				world := newOutWorld(t, lock, w.suffix)
				out := filepath.Join(world.root, "out"+w.suffix)
				if earlier {
					if _, errOut, code := runCLI(t, writeArgs(t, w, out, world.proj)...); code != 0 {
						t.Fatalf("exit %d: %s", code, errOut)
					}
				}
				before := reftest.Snapshot(t, world.root)
				reg.Inject(stalled, fetchtest.Fault{Kind: fetchtest.Stall, Delay: time.Minute})
				n := reg.Requests(stalled)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var stdout, stderr bytes.Buffer
				done := make(chan int, 1)
				args := append([]string{"cargohash"}, writeArgs(t, w, out, world.proj)...)
				go func() { done <- run(ctx, args, &stdout, &stderr) }()
				for i := 0; i < 1000 && reg.Requests(stalled) == n; i++ {
					time.Sleep(10 * time.Millisecond)
				}
				if reg.Requests(stalled) == n {
					t.Fatal("the stalled crate was never requested")
				}
				cancel()
				var code int
				select {
				case code = <-done:
				case <-time.After(time.Minute):
					t.Fatal("not finished a minute after the cancel")
				}
				if code != exitCanceled || stdout.Len() != 0 {
					t.Errorf("exit %d, stdout %q; want 130 and nothing", code, stdout.String())
				}
				if d := diffSnapshots(before, reftest.Snapshot(t, world.root), ""); len(d) > 0 {
					t.Errorf("cancelled, but changed: %v", d)
				}
			})
		}
	}
}

// TestLockSanity: what is not a Cargo.lock is an input error naming the
// file, for every command that reads a lock; a lock of local packages only
// is valid and its cargoHash is that of the staging tree holding just
// Cargo.lock, as real Nix hashes it.
func TestLockSanity(t *testing.T) {
	dir := t.TempDir()
	manifest := "[package]\nname = \"proj\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nserde = \"1\"\n"
	files := map[string]string{
		"proj/Cargo.toml":  manifest, // a project without its lock
		"empty.lock":       "",
		"notoml.lock":      "this is not TOML\n",
		"binary.lock":      "\x7fELF\x02\x01\x01\x00",
		"nopackages.lock":  "# This file is automatically @generated by Cargo.\nversion = 4\n",
		"workspace.toml":   "[workspace]\nmembers = [\"a\"]\n",
		"Cargo.toml":       manifest,
		"local/Cargo.lock": string(fetchtest.Lock(lockfile.Package{Name: "a", Version: "0.1.0"}, lockfile.Package{Name: "b", Version: "0.2.0"})),
	}
	for name, data := range files {
		fetchtest.WriteFile(t, filepath.Join(dir, name), []byte(data))
	}
	for _, tc := range []struct{ lock, want string }{
		{"Cargo.toml", "Cargo manifest (Cargo.toml), not a Cargo.lock; make the lock with `cargo generate-lockfile`"},
		{"workspace.toml", "Cargo manifest (Cargo.toml), not a Cargo.lock"},
		{"proj", "holds a Cargo.toml but no lock; make it with `cargo generate-lockfile`"},
		{"empty.lock", "empty file, not a Cargo.lock"},
		{"notoml.lock", "not valid TOML"},
		{"binary.lock", "not valid TOML"},
		{"nopackages.lock", "no [[package]] entries"},
	} {
		lock := filepath.Join(dir, tc.lock)
		for _, cmd := range [][]string{
			{"prefetch"}, {"output-hashes"}, {"staging", "--out", filepath.Join(dir, "s")},
			{"vendor", "--out", filepath.Join(dir, "v")}, {"tarball", "--out", filepath.Join(dir, "t.tar")},
		} {
			stdout, stderr, code := runCLI(t, append(cmd, fast(t, lock)...)...)
			if code != exitInput || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, tc.lock) {
				t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want exit 2 and one line naming the file with %q", cmd[0], tc.lock, code, stdout, stderr, tc.want)
			}
		}
	}
	for _, leftover := range []string{"s", "v", "t.tar"} {
		if _, err := os.Lstat(filepath.Join(dir, leftover)); err == nil {
			t.Errorf("%s written from a lock that is not one", leftover)
		}
	}

	// Local packages only: nothing to fetch, a staging tree of just Cargo.lock.
	hash, staging := prefetchAndStaging(t, filepath.Join(dir, "local"))
	if entries, _ := os.ReadDir(staging); len(entries) != 1 || entries[0].Name() != "Cargo.lock" {
		t.Fatalf("staging tree of a local-only lock holds %v, want just Cargo.lock", entries)
	}
	nix, feat := reftest.Nix(t)
	if want := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", staging)...))); hash != want {
		t.Errorf("prefetch of a local-only lock printed %s; nix hash path of its staging tree is %s", hash, want)
	}
}

// TestVendorFromStagingOut: vendor --staging never replaces its input
// staging tree or a directory holding it, and replaces its own output.
func TestVendorFromStagingOut(t *testing.T) {
	_, lock := outLock(t)
	world := newOutWorld(t, lock, "")
	staging := filepath.Join(world.root, "staging")
	if _, stderr, code := runCLI(t, writeArgs(t, outWriters[2], staging, world.proj)...); code != 0 {
		t.Fatalf("staging: exit %d: %s", code, stderr)
	}
	for _, tc := range []struct {
		out  string
		code int
	}{
		{staging, exitInput},
		{world.root, exitInput},
		{filepath.Join(world.root, "vendor"), 0},
		{filepath.Join(world.root, "vendor"), 0}, // its own earlier output
		{filepath.Join(staging, "tarballs"), exitInput},
	} {
		before := reftest.Snapshot(t, world.root)
		stdout, stderr, code := runCLI(t, "vendor", "--staging", staging, "--out", tc.out)
		if code != tc.code {
			t.Fatalf("vendor --staging --out %s: exit %d (%s), want %d", tc.out, code, stderr, tc.code)
		}
		if code != 0 {
			if stdout != "" || strings.Count(stderr, "\n") != 1 {
				t.Errorf("--out %s: stdout %q, stderr %q; want one line", tc.out, stdout, stderr)
			}
			if d := diffSnapshots(before, reftest.Snapshot(t, world.root), ""); len(d) > 0 {
				t.Errorf("--out %s refused, but changed: %v", tc.out, d)
			}
		}
	}
}
