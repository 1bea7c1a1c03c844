package vendortree

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/hash/gnutar"
	"github.com/cargohash/cargohash/internal/fetchtest"
)

// fsEntry is what a walk sees of one path.
type fsEntry struct {
	mode fs.FileMode
	data string // file bytes or symlink target
}

// snapshot walks fsys as gnutar.WriteFS does (ReadDir, Lstat, ReadLink,
// Open) and records every path.
func snapshot(t *testing.T, fsys fs.FS) (map[string]fsEntry, error) {
	t.Helper()
	m := map[string]fsEntry{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := fs.Lstat(fsys, p)
		if err != nil {
			return err
		}
		if fi.Mode().Type() != d.Type() {
			t.Errorf("%s: ReadDir says %v, Lstat %v", p, d.Type(), fi.Mode())
		}
		e := fsEntry{mode: fi.Mode()}
		switch {
		case fi.IsDir():
			e.mode = fs.ModeDir // its permissions follow the umask on disk
		case fi.Mode()&fs.ModeSymlink != 0:
			e.data, err = fs.ReadLink(fsys, p)
		default:
			var b []byte
			b, err = fs.ReadFile(fsys, p)
			e.data = string(b)
			if int64(len(b)) != fi.Size() {
				t.Errorf("%s: size %d, read %d bytes", p, fi.Size(), len(b))
			}
		}
		m[p] = e
		return err
	})
	return m, err
}

// tarOf is the deterministic tarball of fsys.
func tarOf(t *testing.T, fsys fs.FS) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := gnutar.NewWriter(&b)
	if err := gnutar.WriteFS(context.Background(), tw, fsys, "v"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// checkFSMatches compares the FS of staging with the tree Write
// writes with the same options: both succeed with the same paths, modes,
// bytes and symlinks (and the same tarball), or both fail with the same
// error. tweak adjusts the FS before use.
func checkFSMatches(t *testing.T, staging string, opts Options, tweak func(*FS)) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "vendor")
	diskErr := fromStaging(context.Background(), staging, out, opts)
	f, err := openStaging(context.Background(), staging, opts)
	if err != nil {
		if diskErr == nil || err.Error() != diskErr.Error() {
			t.Fatalf("openStaging: %v; Write: %v", err, diskErr)
		}
		return
	}
	defer f.Close()
	if tweak != nil {
		tweak(f)
	}
	got, err := snapshot(t, f)
	if diskErr != nil {
		var pe *fs.PathError
		if err == nil || !errors.As(err, &pe) || pe.Err.Error() != diskErr.Error() {
			t.Fatalf("FS walk: %v\nWrite: %v", err, diskErr)
		}
		return
	}
	if err != nil {
		t.Fatalf("FS walk: %v (Write succeeded)", err)
	}
	want, err := snapshot(t, os.DirFS(out))
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: missing from the FS", p)
		} else if g != w {
			t.Errorf("%s: FS has %v %q, disk %v %q", p, g.mode, g.data, w.mode, w.data)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: only in the FS", p)
		}
	}
	if a, b := tarOf(t, f), tarOf(t, os.DirFS(out)); !bytes.Equal(a, b) {
		t.Errorf("tarballs differ (%d and %d bytes)", len(a), len(b))
	}
}

func TestFSMatchesWriteEndToEnd(t *testing.T) {
	w := newWorld(t)
	for _, opts := range []Options{{Layout: Cargo}, {Layout: Cargo, VersionedDirs: true}, {Layout: Nixpkgs}, {Layout: Cargo, Jobs: 1}} {
		t.Run(opts.Layout.String(), func(t *testing.T) {
			checkFSMatches(t, w.staging, opts, nil)
		})
	}
	// Every crate's files past its first 100 bytes spilled to disk: the
	// same tree, and nothing left in the spill directory.
	spill := t.TempDir()
	checkFSMatches(t, w.staging, Options{Layout: Cargo, SpillDir: spill, memLimit: 100}, nil)
	for _, layout := range []Kind{Cargo, Nixpkgs} {
		outs := [2]string{filepath.Join(t.TempDir(), "v"), filepath.Join(t.TempDir(), "v")}
		for i, limit := range []int64{0, 100} {
			if err := fromStaging(context.Background(), w.staging, outs[i], Options{Layout: layout, SpillDir: spill, memLimit: limit}); err != nil {
				t.Fatal(err)
			}
		}
		if a, b := tarOf(t, os.DirFS(outs[0])), tarOf(t, os.DirFS(outs[1])); !bytes.Equal(a, b) {
			t.Errorf("%v: spilled crates written otherwise", layout)
		}
	}
	if names := topDirs(t, spill); names != "" {
		t.Errorf("spill directories left behind: %s", names)
	}
}

func TestFSMatchesWriteGitSymlinks(t *testing.T) {
	staging, _ := symlinkStaging(t)
	for _, layout := range []Kind{Cargo, Nixpkgs} {
		checkFSMatches(t, staging, Options{Layout: layout}, nil)
	}
}

// TestFSHostileTarballs: the FS refuses what Write refuses, with the
// same error, and keeps what it keeps.
func TestFSHostileTarballs(t *testing.T) {
	p := "evil-0.1.0/"
	ok := fetchtest.FileEntry(p+"Cargo.toml", "[package]\n")
	link := func(name, target string) fetchtest.Entry {
		return fetchtest.Entry{Name: p + name, Type: tar.TypeSymlink, Linkname: target}
	}
	dir := func(name string) fetchtest.Entry {
		return fetchtest.Entry{Name: p + name, Type: tar.TypeDir, Mode: 0o755}
	}
	tests := map[string]func(t *testing.T) []byte{
		"absolute path":             entries(ok, fetchtest.FileEntry("/etc/evil", "x")),
		"dotdot":                    entries(ok, fetchtest.FileEntry(p+"a/../../evil", "x")),
		"other prefix":              entries(ok, fetchtest.FileEntry("other-0.1.0/x", "x")),
		"hard link":                 entries(ok, fetchtest.Entry{Name: p + "h", Type: tar.TypeLink, Linkname: p + "Cargo.toml"}),
		"fifo":                      entries(ok, fetchtest.Entry{Name: p + "f", Type: tar.TypeFifo}),
		"absolute symlink":          entries(ok, link("l", "/etc/passwd")),
		"escaping symlink":          entries(ok, link("d/l", "../../x")),
		"symlink chain escaping":    entries(ok, link("a", "."), link("b", "a/..")),
		"escape through a link":     entries(ok, dir("d"), link("d/s", ".."), link("l", "d/s/../x")),
		"symlink loop":              entries(ok, link("a", "b"), link("b", "a")),
		"symlink through a file":    entries(ok, fetchtest.FileEntry(p+"f", "x"), link("l", "f/x")),
		"slash on a file":           entries(ok, fetchtest.FileEntry(p+"f", "x"), link("l", "f/")),
		"write through symlink":     entries(ok, link("l", "sub"), fetchtest.FileEntry(p+"l/x", "x")),
		"file below a file":         entries(ok, fetchtest.FileEntry(p+"f", "x"), fetchtest.FileEntry(p+"f/x", "y")),
		"dir over a file":           entries(ok, fetchtest.FileEntry(p+"f", "x"), dir("f")),
		"dir over a link to a file": entries(ok, fetchtest.FileEntry(p+"f", "x"), link("l", "f"), dir("l")),
		"dir over a dangling link":  entries(ok, link("l", "nowhere"), dir("l")),
		"file over a dir":           entries(ok, dir("d"), fetchtest.FileEntry(p+"d", "x")),
		"link over a dir":           entries(ok, dir("d"), link("d", "x")),
		"too big":                   bigHeader,
		"truncated": func(t *testing.T) []byte {
			b := entries(ok, fetchtest.FileEntry(p+"x", strings.Repeat("y", 5000)))(t)
			return b[:len(b)-6]
		},
		// Kept: what tar keeps.
		"fine links": entries(ok, dir("d/e"), fetchtest.FileEntry(p+"d/e/f", "x"), link("l", "d/e/f"), link("d/up", "../Cargo.toml"),
			link("dl", "d/e/"), link("chain", "l"), link("dangling", "nowhere"), link("dotdir", "d/e/./.."),
			link("dir over a link to a dir", "d"), dir("dir over a link to a dir")),
		"replaced entries": entries(ok, fetchtest.FileEntry(p+"x", "first"), link("x", "Cargo.toml"), fetchtest.FileEntry(p+"y", "1"), fetchtest.FileEntry(p+"y", "2"),
			link("z", "y"), fetchtest.FileEntry(p+"z", "3"), fetchtest.FileEntry(p+".git/config", "x"), fetchtest.FileEntry(p+"s/.gitignore", "x"), fetchtest.FileEntry(p+".cargo-ok", "")),
	}
	for name, crate := range tests {
		t.Run(name, func(t *testing.T) {
			staging := stageOne(t, crate(t))
			for _, layout := range []Kind{Nixpkgs, Cargo} {
				checkFSMatches(t, staging, Options{Layout: layout}, nil)
			}
		})
	}
}

func TestFSAddFile(t *testing.T) {
	staging := stageOne(t, entries(fetchtest.FileEntry("evil-0.1.0/Cargo.toml", "[package]\n"))(t))
	f, err := openStaging(context.Background(), staging, Options{Layout: Cargo})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, name := range []string{"Cargo.lock", ".cargo/config.toml"} {
		if err := f.AddFile(name, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"Cargo.lock", "evil", "evil/x", "../x"} {
		if err := f.AddFile(name, nil, 0o644); err == nil {
			t.Errorf("AddFile(%q) succeeded", name)
		}
	}
	got, err := snapshot(t, f)
	if err != nil {
		t.Fatal(err)
	}
	if got[".cargo/config.toml"].data != ".cargo/config.toml" || got["Cargo.lock"].mode != 0o644 || got["evil/Cargo.toml"].data != "[package]\n" {
		t.Errorf("tree %v", got)
	}
}
