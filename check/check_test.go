package check_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/cargohash/cargohash/check"
	"github.com/cargohash/cargohash/hash/gnutar"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
	"github.com/cargohash/cargohash/vendortree"
)

const (
	chkCommit  = "1111111111111111111111111111111111111111"
	chkCommit2 = "2222222222222222222222222222222222222222"
)

// chkWorld is a project lock (a local package, two crates.io crates and a
// git crate) whose crates exist only as bytes: nothing is fetched.
type chkWorld struct {
	pkgs   []lockfile.Package // fetchable packages, in lock order
	crates map[string][]byte  // NAME-VERSION.tar.gz → .crate bytes
}

func chkCrate(w *chkWorld, name, version string) lockfile.Package {
	data := fetchtest.Crate(name, version, map[string]string{"src/lib.rs": "// " + name + " " + version + "\n", "README.md": "# " + name + "\n"})
	w.crates[name+"-"+version+".tar.gz"] = data
	return fetchtest.CratesIO(name, version, data)
}

func chkGit(t testing.TB, name, version, commit string) lockfile.Package {
	src, err := lockfile.ParseSource("git+https://example.org/" + name + "?branch=main#" + commit)
	if err != nil {
		t.Fatal(err)
	}
	return lockfile.Package{Name: name, Version: version, Source: src}
}

func newChkWorld(t testing.TB) *chkWorld {
	w := &chkWorld{crates: map[string][]byte{}}
	w.pkgs = []lockfile.Package{chkCrate(w, "serde", "1.0.197"), chkCrate(w, "libc", "0.2.150"), chkGit(t, "gdep", "0.1.0", chkCommit)}
	return w
}

// replace returns w's packages with those named in with replaced (a
// package with an empty version removes it) and the others of with added.
func (w *chkWorld) with(repl ...lockfile.Package) []lockfile.Package {
	var out []lockfile.Package
	used := map[string]bool{}
	for _, p := range w.pkgs {
		for _, r := range repl {
			if r.Name == p.Name {
				p, used[r.Name] = r, true
			}
		}
		if p.Version != "" {
			out = append(out, p)
		}
	}
	for _, r := range repl {
		if !used[r.Name] {
			out = append(out, r)
		}
	}
	return out
}

// staging writes the staging dir of w's crates (all of them, whatever the
// lock) with the given lock bytes.
func (w *chkWorld) staging(t testing.TB, lock []byte) string {
	dir := filepath.Join(t.TempDir(), "staging")
	fetchtest.WriteFile(t, filepath.Join(dir, "Cargo.lock"), lock)
	l, err := lockfile.Parse("Cargo.lock", lock)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Packages {
		switch p.Source.Kind {
		case lockfile.Registry:
			nv := p.Name + "-" + p.Version + ".tar.gz"
			fetchtest.WriteFile(t, filepath.Join(dir, "tarballs", nv), w.crates[nv])
		case lockfile.Git:
			root := filepath.Join(dir, "git", p.Source.Commit)
			fetchtest.WriteFile(t, filepath.Join(root, p.Name, "Cargo.toml"), []byte(fetchtest.Manifest(p.Name, p.Version)))
			fetchtest.WriteFile(t, filepath.Join(root, p.Name, "src", "lib.rs"), []byte("// git "+p.Name+"\n"))
		}
	}
	return dir
}

// vendor lays out the staging dir of lock in a layout.
func (w *chkWorld) vendor(t testing.TB, lock []byte, layout vendortree.Kind) string {
	out := filepath.Join(t.TempDir(), "vendor")
	in, err := vendortree.StagingDir(w.staging(t, lock))
	if err != nil {
		t.Fatal(err)
	}
	if err := vendortree.Write(context.Background(), in, out, vendortree.Options{Layout: layout}); err != nil {
		t.Fatal(err)
	}
	return out
}

// chkTarball archives dir under top (GNU tar format, hash/gnutar) to a file
// whose suffix picks the compression.
func chkTarball(t testing.TB, dir, top, name string) string {
	t.Helper()
	var buf bytes.Buffer
	var cw io.WriteCloser
	switch {
	case strings.HasSuffix(name, ".gz"):
		cw = gzip.NewWriter(&buf)
	case strings.HasSuffix(name, ".zst"):
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		cw = zw
	default:
		cw = nopWriteCloser{&buf}
	}
	bw := bufio.NewWriter(cw)
	tw := gnutar.NewWriter(bw)
	if err := gnutar.WriteFS(context.Background(), tw, os.DirFS(dir), top); err != nil {
		t.Fatal(err)
	}
	for _, step := range []func() error{tw.Close, bw.Flush, cw.Close} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), name)
	fetchtest.WriteFile(t, out, buf.Bytes())
	return out
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// cargoTarball is a vendor tarball as `cargohash tarball` makes one: the
// cargo layout plus Cargo.lock under demo-vendor/.
func (w *chkWorld) cargoTarball(t testing.TB, lock []byte, name string) string {
	dir := w.vendor(t, lock, vendortree.Cargo)
	fetchtest.WriteFile(t, filepath.Join(dir, "Cargo.lock"), lock)
	return chkTarball(t, dir, "demo-vendor", name)
}

func codes(r *check.Result) []string {
	out := []string{}
	for _, p := range r.Problems {
		out = append(out, p.Code)
	}
	return out
}

func texts(r *check.Result) []string {
	out := []string{}
	for _, c := range r.Changes {
		out = append(out, c.Kind+" "+strings.Join(c.Fields, ",")+": "+c.Text)
	}
	return out
}

func short(h string) string { return h[:8] + "…" }

// TestCheckLock compares src locks with the lock of every kind of vendor
// input made from the original lock.
func TestCheckLock(t *testing.T) {
	w := newChkWorld(t)
	orig := fetchtest.ProjectLock(w.pkgs...)
	serde := w.pkgs[0]
	bumped := chkCrate(w, "serde", "1.0.198")
	rand := chkCrate(w, "rand", "0.8.5")
	badSum := serde
	badSum.Checksum = strings.Repeat("0", 64)
	vendors := map[string]func() string{
		"staging":          func() string { return w.staging(t, orig) },
		"nixpkgs":          func() string { return w.vendor(t, orig, vendortree.Nixpkgs) },
		"cargo (no lock)":  func() string { return w.vendor(t, orig, vendortree.Cargo) },
		"tarball .tar.gz":  func() string { return w.cargoTarball(t, orig, "v.tar.gz") },
		"tarball .tar.zst": func() string { return w.cargoTarball(t, orig, "v.tar.zst") },
		"tarball .tar":     func() string { return w.cargoTarball(t, orig, "v.tar") },
	}
	type want struct {
		codes   []string
		changes []string
	}
	ok := want{codes: []string{}, changes: []string{}}
	differ := func(changes ...string) want { return want{codes: []string{"lock-packages-differ"}, changes: changes} }
	cases := []struct {
		name string
		src  []byte
		want want
		// noLock is the result for a cargo-layout tree without Cargo.lock,
		// where only names, versions and package checksums are known.
		noLock *want
	}{
		{name: "identical", src: orig, want: ok},
		{name: "bumped version", src: fetchtest.ProjectLock(w.with(bumped)...),
			want: differ("changed version,checksum: ~ serde 1.0.197 -> 1.0.198 (checksum " + short(serde.Checksum) + " -> " + short(bumped.Checksum) + ")")},
		{name: "added and removed", src: fetchtest.ProjectLock(w.with(lockfile.Package{Name: "libc"}, rand)...),
			want: differ("removed : - libc 0.2.150 ("+lockfile.CratesIORegistry+")", "added : + rand 0.8.5 ("+lockfile.CratesIORegistry+")"),
			// A crate src does not name has no known source.
			noLock: &want{codes: []string{"lock-packages-differ"}, changes: []string{"removed : - libc 0.2.150", "added : + rand 0.8.5 (" + lockfile.CratesIORegistry + ")"}}},
		{name: "changed checksum", src: fetchtest.ProjectLock(w.with(badSum)...),
			want: differ("changed checksum: ~ serde 1.0.197 (checksum " + short(serde.Checksum) + " -> 00000000…)")},
		{name: "changed git commit", src: fetchtest.ProjectLock(w.with(chkGit(t, "gdep", "0.1.0", chkCommit2))...),
			want:   differ("changed source: ~ gdep 0.1.0 (commit 11111111… -> 22222222…)"),
			noLock: &ok}, // the cargo layout records no git commit
		{name: "CRLF only", src: bytes.ReplaceAll(orig, []byte("\n"), []byte("\r\n")),
			want:   want{codes: []string{"lock-line-endings-differ"}, changes: []string{}},
			noLock: &ok},
		{name: "dependencies only", src: fetchtest.ProjectLock(w.with(func() lockfile.Package { p := serde; p.Dependencies = []string{"libc"}; return p }())...),
			want:   want{codes: []string{"lock-dependencies-differ"}, changes: []string{"changed dependencies: ~ serde 1.0.197 (dependencies)"}},
			noLock: &ok},
	}
	for kind, mk := range vendors {
		vendor := mk()
		for _, c := range cases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				r, err := check.Vendor(context.Background(), fetchtest.Project(t, c.src), vendor)
				if err != nil {
					t.Fatal(err)
				}
				want := c.want
				if kind == "cargo (no lock)" && c.noLock != nil {
					want = *c.noLock
				}
				if got := codes(r); !reflect.DeepEqual(got, want.codes) {
					t.Errorf("problems %q, want %q\n%+v", got, want.codes, r.Problems)
				}
				if got := texts(r); !reflect.DeepEqual(got, want.changes) {
					t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want.changes, "\n"))
				}
				if r.OK != (len(want.codes) == 0) || r.Check != "lock" || len(r.Issues) != 0 {
					t.Errorf("ok %v, check %q, issues %v", r.OK, r.Check, r.Issues)
				}
				if !r.OK && !strings.Contains(r.Problems[0].Message, "ERROR: cargoHash or cargoSha256 is out of date") {
					t.Errorf("no nixpkgs hint in %q", r.Problems[0].Message)
				}
			})
		}
	}
}

func TestCheckLockCRLFMessage(t *testing.T) {
	w := newChkWorld(t)
	orig := fetchtest.ProjectLock(w.pkgs...)
	r, err := check.Vendor(context.Background(), fetchtest.Project(t, bytes.ReplaceAll(orig, []byte("\n"), []byte("\r\n"))), w.staging(t, orig))
	if err != nil {
		t.Fatal(err)
	}
	if msg := r.Problems[0].Message; !strings.Contains(msg, "differ only in line endings (src: CRLF, vendor: LF)") {
		t.Errorf("message %q", msg)
	}
}

func TestCheckMissingLocks(t *testing.T) {
	w := newChkWorld(t)
	orig := fetchtest.ProjectLock(w.pkgs...)
	ctx := context.Background()
	emptySrc := t.TempDir()
	r, err := check.Vendor(ctx, emptySrc, w.staging(t, orig))
	if err != nil {
		t.Fatal(err)
	}
	wantSrc := filepath.Join(emptySrc, "Cargo.lock")
	if r.OK || !reflect.DeepEqual(codes(r), []string{"src-lock-missing"}) || r.Src != wantSrc ||
		!strings.Contains(r.Problems[0].Message, "ERROR: Missing Cargo.lock from src. Expected to find it at: "+wantSrc) {
		t.Errorf("missing src lock: %+v", r)
	}
	// The same through the path of the lock file itself.
	if r, err := check.Vendor(ctx, wantSrc, w.staging(t, orig)); err != nil || !reflect.DeepEqual(codes(r), []string{"src-lock-missing"}) {
		t.Errorf("missing src lock by file name: %v %+v", err, r)
	}

	for _, kind := range []string{"staging", "nixpkgs"} {
		dir := w.staging(t, orig)
		if kind == "nixpkgs" {
			dir = w.vendor(t, orig, vendortree.Nixpkgs)
		}
		os.Remove(filepath.Join(dir, "Cargo.lock"))
		r, err := check.Vendor(ctx, fetchtest.Project(t, orig), dir)
		if err != nil {
			t.Fatal(err)
		}
		if r.OK || !reflect.DeepEqual(codes(r), []string{"vendor-lock-missing"}) || r.Vendor.Kind.String() != kind || r.Vendor.Lock != "" ||
			!strings.Contains(r.Problems[0].Message, "ERROR: Missing lockfile from cargo vendor. Expected to find it at: "+dir+"/Cargo.lock") {
			t.Errorf("%s without lock: %+v", kind, r)
		}
	}

	for _, p := range []string{filepath.Join(t.TempDir(), "nope"), filepath.Join(t.TempDir(), "nope", "Cargo.lock")} {
		if _, err := check.Vendor(ctx, p, w.staging(t, orig)); err == nil {
			t.Errorf("src %s: no error", p)
		}
		if _, err := check.Vendor(ctx, fetchtest.Project(t, orig), p); err == nil {
			t.Errorf("vendor %s: no error", p)
		}
	}
}

func issues(r *check.Result) []string {
	out := []string{}
	for _, i := range r.Issues {
		out = append(out, i.Kind+" "+i.Crate+" "+i.Dir+" "+i.File)
	}
	return out
}

// TestCheckVendorTree tampers with vendor trees of both layouts, on disk and
// in tarballs.
func TestCheckVendorTree(t *testing.T) {
	w := newChkWorld(t)
	orig := fetchtest.ProjectLock(w.pkgs...)
	ctx := context.Background()
	cases := []struct {
		name   string
		layout vendortree.Kind
		tamper func(t *testing.T, dir string)
		want   []string
	}{
		{"cargo intact", vendortree.Cargo, func(*testing.T, string) {}, []string{}},
		{"nixpkgs intact", vendortree.Nixpkgs, func(*testing.T, string) {}, []string{}},
		{"cargo tampered file", vendortree.Cargo, func(t *testing.T, dir string) {
			fetchtest.WriteFile(t, filepath.Join(dir, "serde/src/lib.rs"), []byte("evil\n"))
		}, []string{"tampered serde@1.0.197 serde src/lib.rs"}},
		{"cargo extra and missing file", vendortree.Cargo, func(t *testing.T, dir string) {
			fetchtest.WriteFile(t, filepath.Join(dir, "libc/src/extra.rs"), []byte("x\n"))
			os.Remove(filepath.Join(dir, "libc/README.md"))
		}, []string{"missing-file libc@0.2.150 libc README.md", "extra-file libc@0.2.150 libc src/extra.rs"}},
		{"cargo symlinked file", vendortree.Cargo, func(t *testing.T, dir string) {
			// A symlink to a file with the same bytes is what cargo lists.
			os.Rename(filepath.Join(dir, "serde/README.md"), filepath.Join(dir, "serde/README.real"))
			os.Symlink("README.real", filepath.Join(dir, "serde/README.md"))
		}, []string{"extra-file serde@1.0.197 serde README.real"}},
		{"cargo symlink out of the tree", vendortree.Cargo, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "serde/README.md"))
			os.Symlink("../../../../../etc/passwd", filepath.Join(dir, "serde/README.md"))
		}, []string{"missing-file serde@1.0.197 serde README.md"}},
		{"cargo missing checksum file", vendortree.Cargo, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "gdep/.cargo-checksum.json"))
		}, []string{"no-checksum-file gdep@0.1.0 gdep "}},
		{"nixpkgs package checksum", vendortree.Nixpkgs, func(t *testing.T, dir string) {
			fetchtest.WriteFile(t, filepath.Join(dir, "source-registry/serde-1.0.197/.cargo-checksum.json"),
				[]byte(`{"files": {}, "package": "`+strings.Repeat("a", 64)+`"}`))
		}, []string{"package-checksum serde@1.0.197 source-registry/serde-1.0.197 .cargo-checksum.json"}},
		{"nixpkgs missing and extra crate", vendortree.Nixpkgs, func(t *testing.T, dir string) {
			os.RemoveAll(filepath.Join(dir, "source-registry/libc-0.2.150"))
			fetchtest.WriteFile(t, filepath.Join(dir, "source-registry/evil-1.0.0/.cargo-checksum.json"), []byte(`{"files": {}}`))
		}, []string{"extra-crate  source-registry/evil-1.0.0 ", "missing-crate libc@0.2.150  "}},
		{"nixpkgs tampered file not seen", vendortree.Nixpkgs, func(t *testing.T, dir string) {
			// nixpkgs' checksum files list no files: nothing to compare.
			fetchtest.WriteFile(t, filepath.Join(dir, "source-registry/serde-1.0.197/src/lib.rs"), []byte("evil\n"))
		}, []string{}},
	}
	for _, c := range cases {
		dir := w.vendor(t, orig, c.layout)
		if c.layout == vendortree.Cargo {
			fetchtest.WriteFile(t, filepath.Join(dir, "Cargo.lock"), orig) // checked against it
		}
		c.tamper(t, dir)
		check := func(t *testing.T, vendor string) {
			r, err := check.Vendor(ctx, "", vendor)
			if err != nil {
				t.Fatal(err)
			}
			if got := issues(r); !reflect.DeepEqual(got, c.want) {
				t.Errorf("issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
			if r.OK != (len(c.want) == 0) || r.Check != "vendor" || r.Crates < 2 {
				t.Errorf("ok %v, check %q, crates %d, problems %v", r.OK, r.Check, r.Crates, r.Problems)
			}
		}
		t.Run(c.name, func(t *testing.T) { check(t, dir) })
		t.Run(c.name+"/through a symlink", func(t *testing.T) {
			link := filepath.Join(t.TempDir(), "result")
			if err := os.Symlink(dir, link); err != nil {
				t.Fatal(err)
			}
			check(t, link)
		})
		t.Run(c.name+"/tarball", func(t *testing.T) { check(t, chkTarball(t, dir, "x-vendor", "v.tar.gz")) })
	}
}

func TestCheckVendorIssueText(t *testing.T) {
	w := newChkWorld(t)
	orig := fetchtest.ProjectLock(w.pkgs...)
	dir := w.vendor(t, orig, vendortree.Cargo)
	fetchtest.WriteFile(t, filepath.Join(dir, "serde/src/lib.rs"), []byte("evil\n"))
	r, err := check.Vendor(context.Background(), fetchtest.Project(t, orig), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "serde@1.0.197: serde/src/lib.rs: sha256 " + fetchtest.Checksum([]byte("evil\n")) + ", .cargo-checksum.json says " +
		fetchtest.Checksum([]byte("// serde 1.0.197\n"))
	if len(r.Issues) != 1 || r.Issues[0].String() != want || !reflect.DeepEqual(codes(r), []string{"vendor-tree"}) {
		t.Errorf("got %v %v, want %q", r.Issues, codes(r), want)
	}
}

func TestCheckStaging(t *testing.T) {
	w := newChkWorld(t)
	orig := fetchtest.ProjectLock(w.pkgs...)
	dir := w.staging(t, orig)
	r, err := check.Vendor(context.Background(), "", dir)
	if err != nil || !r.OK || r.Crates != 3 || r.Vendor.Kind.String() != "staging" {
		t.Fatalf("intact staging: %v %+v", err, r)
	}
	fetchtest.WriteFile(t, filepath.Join(dir, "tarballs/libc-0.2.150.tar.gz"), []byte("not a crate"))
	fetchtest.WriteFile(t, filepath.Join(dir, "tarballs/evil-1.0.0.tar.gz"), []byte("x"))
	os.RemoveAll(filepath.Join(dir, "git", chkCommit))
	r, err = check.Vendor(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"package-checksum libc@0.2.150  tarballs/libc-0.2.150.tar.gz", "missing-crate gdep@0.1.0  git/" + chkCommit,
		"extra-crate   tarballs/evil-1.0.0.tar.gz"}
	if got := issues(r); !reflect.DeepEqual(got, want) || r.OK {
		t.Errorf("issues:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// With --src, whose lock is the staging dir's: the same problems.
	// The lock comparison passing skipped the staged files (found by
	// review: a tampered or missing tarball was "ok").
	r, err = check.Vendor(context.Background(), fetchtest.Project(t, orig), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := issues(r); !reflect.DeepEqual(got, want) || r.OK || !reflect.DeepEqual(codes(r), []string{"vendor-tree"}) {
		t.Errorf("with --src: issues:\n%s\ncodes %v", strings.Join(got, "\n"), codes(r))
	}
}

// TestCheckNotAVendorTree: --vendor alone on a directory with no lock and
// no vendored crate has checked nothing, and says so with an error: a
// mistyped path was "ok: 0 crates" (found by review).
func TestCheckNotAVendorTree(t *testing.T) {
	empty := t.TempDir()
	foreign := t.TempDir()
	fetchtest.WriteFile(t, filepath.Join(foreign, "notes.txt"), []byte("mine\n"))
	fetchtest.WriteFile(t, filepath.Join(foreign, "lib.rs"), []byte("fn f() {}\n"))
	for _, dir := range []string{empty, foreign} {
		r, err := check.Vendor(context.Background(), "", dir)
		if err == nil || !strings.Contains(err.Error(), dir+": not a vendor tree") {
			t.Errorf("%s: %v %+v, want an error saying it is not a vendor tree", dir, err, r)
		}
	}
	// Against a lock with no crate to fetch, an empty vendor tree is one.
	if r, err := check.Vendor(context.Background(), fetchtest.Project(t, fetchtest.ProjectLock()), empty); err != nil || !r.OK {
		t.Errorf("an empty tree for a lock without crates: %v %+v", err, r)
	}
}

func TestCheckTruncatedTarball(t *testing.T) {
	w := newChkWorld(t)
	orig := fetchtest.ProjectLock(w.pkgs...)
	for _, name := range []string{"v.tar.gz", "v.tar.zst", "v.tar"} {
		full := w.cargoTarball(t, orig, name)
		data, _ := os.ReadFile(full)
		cuts := []int{len(data) / 2, len(data) - 1}
		if name == "v.tar" {
			// The last byte is record padding after the end-of-archive
			// marker: without it the archive is still whole. At an entry
			// boundary archive/tar sees a clean EOF: the missing marker
			// must still be noticed.
			cuts = []int{len(data) / 2, len(data) - 10240, 512 * ((len(data) - 10240) / 512 / 2)}
		}
		for _, n := range cuts {
			p := filepath.Join(t.TempDir(), name)
			fetchtest.WriteFile(t, p, data[:n])
			r, err := check.Vendor(context.Background(), fetchtest.Project(t, orig), p)
			if err == nil || !strings.Contains(err.Error(), p+": reading vendor tarball: ") {
				t.Errorf("%s cut at %d of %d: err %v, result %+v", name, n, len(data), err, r)
			}
		}
		if r, err := check.Vendor(context.Background(), fetchtest.Project(t, orig), full); err != nil || !r.OK {
			t.Errorf("%s whole: %v %+v", name, err, r)
		}
	}
}

// TestCheckJSONShape pins the JSON keys of the result: scripts rely on them.
func TestCheckJSONShape(t *testing.T) {
	w := newChkWorld(t)
	orig := fetchtest.ProjectLock(w.pkgs...)
	r, err := check.Vendor(context.Background(), fetchtest.Project(t, fetchtest.ProjectLock(w.with(lockfile.Package{Name: "libc"})...)), w.cargoTarball(t, orig, "v.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(r)
	var m map[string]any
	json.Unmarshal(data, &m)
	keys := func(v any) []string {
		var out []string
		for k := range v.(map[string]any) {
			out = append(out, k)
		}
		return sortStrings(out)
	}
	if got, want := keys(m), []string{"changes", "check", "crates", "hash", "issues", "ok", "problems", "src", "vendor"}; !reflect.DeepEqual(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
	if got, want := keys(m["vendor"]), []string{"kind", "lock", "path", "tarball"}; !reflect.DeepEqual(got, want) {
		t.Errorf("vendor keys %v, want %v", got, want)
	}
	ch := m["changes"].([]any)[0]
	if got, want := keys(ch), []string{"fields", "kind", "name", "new", "old", "text"}; !reflect.DeepEqual(got, want) {
		t.Errorf("change keys %v, want %v", got, want)
	}
	if got, want := keys(ch.(map[string]any)["old"]), []string{"checksum", "name", "source", "version"}; !reflect.DeepEqual(got, want) {
		t.Errorf("package keys %v, want %v", got, want)
	}
	if m["hash"] != nil || m["vendor"].(map[string]any)["lock"] != m["vendor"].(map[string]any)["path"].(string)+"!/demo-vendor/Cargo.lock" {
		t.Errorf("hash %v, vendor %v", m["hash"], m["vendor"])
	}
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}
