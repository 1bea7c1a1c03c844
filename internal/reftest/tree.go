package reftest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// MakeTree builds on disk every kind of node and name-order trap the format
// has: empty directories and files, executables, symlinks (relative,
// absolute, dangling), names with spaces and unicode, and names whose
// bytewise order differs from a naive sort of full paths.
func MakeTree(t testing.TB, root string) {
	t.Helper()
	files := map[string]string{
		"a":                        "a\n",
		"a-b":                      "dash",
		"a.b":                      "dot",
		"A":                        "upper",
		"_":                        "underscore",
		"dir/a/b":                  "nested",
		"dir/a-b/c":                "x",
		"dir/with space/f i l e":   "spaces",
		"dir/ünïcödé/日本":           "unicode",
		"empty-file":               "",
		"seven":                    "1234567",
		"eight":                    "12345678",
		"nine":                     "123456789",
		"deep/1/2/3/4/5/6/7/8/9/x": "deep",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Names and targets on both sides of the 64 bytes a short token takes.
	for _, n := range []int{56, 57, 64, 65, 200} {
		name := strings.Repeat("n", n)
		if err := os.WriteFile(filepath.Join(root, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(strings.Repeat("t", n), filepath.Join(root, "link-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	// A directory too big for one getdents(2), of files that straddle the
	// archive's blocks at every offset.
	many := filepath.Join(root, "many")
	if err := os.MkdirAll(many, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 1500 {
		data := bytes.Repeat([]byte{byte(i)}, i*97%5003)
		if err := os.WriteFile(filepath.Join(many, fmt.Sprintf("file-number-%04d.rs", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16+3) // 3 MiB + 48 bytes: many blocks
	if err := os.WriteFile(filepath.Join(root, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "user-exec-only"), []byte("x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"empty-dir", "dir/empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"link-rel":      "dir/a/b",
		"link-abs":      "/etc/hostname",
		"link-dangling": "does/not/exist",
		"dir/link-up":   "../a",
		"link-dir":      "dir",
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
}

// Snapshot describes every path under root (root itself is "."): "dir
// MODE", "file MODE CONTENT" (quoted) or "symlink TARGET". Two snapshots
// are equal when nothing under root was added, removed or changed.
func Snapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			snap[rel] = "symlink " + target
		case d.IsDir():
			snap[rel] = fmt.Sprintf("dir %v", fi.Mode().Perm())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			snap[rel] = fmt.Sprintf("file %v %q", fi.Mode().Perm(), data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// SparseFile makes a file of size bytes that takes no disk space (a hole),
// for tests that cancel the hashing of something huge.
func SparseFile(t testing.TB, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sparse")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return path
}
