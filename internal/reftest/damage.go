package reftest

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// FlipByte damages the file at path in place, as a failing disk or a stray
// write would: the byte at offset at (clamped to the file; negative: the
// middle) gets every bit flipped, and an empty file gets one byte. The
// file is made writable first (git's objects are read-only).
func FlipByte(t testing.TB, path string, at int64) {
	t.Helper()
	os.Chmod(path, 0o644)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		if _, err := f.Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if at < 0 {
		at = fi.Size() / 2
	}
	at = min(at, fi.Size()-1)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

// Files lists the regular files under root, relative to it, sorted: what a
// damage test damages one at a time.
func Files(t testing.TB, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}
