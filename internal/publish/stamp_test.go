package publish

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestChanged writes a stamped tree with Dir, changes it in each way a
// user can, and expects Changed to name the entry the user touched.
func TestChanged(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "outside.txt")
	if err := os.WriteFile(outside, []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(outside)
	if err != nil {
		t.Fatal(err)
	}
	build := func(tmp string) error {
		for _, d := range []string{"crate/src", "crate/empty"} {
			if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
				return err
			}
		}
		for _, f := range []string{"Cargo.lock", "crate/src/lib.rs", "crate/Cargo.toml"} {
			if err := os.WriteFile(filepath.Join(tmp, f), []byte(f), 0o644); err != nil {
				return err
			}
		}
		return os.Symlink(outside, filepath.Join(tmp, "crate/link"))
	}
	later := time.Now().Add(time.Hour)
	tests := []struct {
		name   string
		change func(dir string) error
		want   string
	}{
		{"untouched", func(string) error { return nil }, ""},
		{"a file edited", func(dir string) error {
			f, err := os.OpenFile(filepath.Join(dir, "crate/src/lib.rs"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			f.WriteString("// patched")
			return f.Close()
		}, "crate/src/lib.rs"},
		{"a file added", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "crate/src/notes.txt"), nil, 0o644)
		}, "crate/src/notes.txt"},
		{"a file removed", func(dir string) error { return os.Remove(filepath.Join(dir, "crate/Cargo.toml")) }, "crate"},
		{"an empty dir added", func(dir string) error { return os.Mkdir(filepath.Join(dir, "crate/empty/new"), 0o755) }, "crate/empty/new"},
		{"a symlink replaced", func(dir string) error {
			os.Remove(filepath.Join(dir, "crate/link"))
			return os.Symlink("elsewhere", filepath.Join(dir, "crate/link"))
		}, "crate"},
		{"only a time moved", func(dir string) error {
			return os.Chtimes(filepath.Join(dir, "Cargo.lock"), later, later)
		}, "Cargo.lock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			if err := Dir(context.Background(), dir, Options{Stamp: true}, build); err != nil {
				t.Fatal(err)
			}
			if err := tt.change(dir); err != nil {
				t.Fatal(err)
			}
			got, err := Changed(dir, nil)
			if err != nil || got != tt.want {
				t.Errorf("Changed = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	after, err := os.Stat(outside)
	if err != nil || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("a symlink's target outside the tree was stamped: %v -> %v (%v)", before.ModTime(), after.ModTime(), err)
	}

	// skip vouches for a changed directory and everything below it.
	dir := filepath.Join(t.TempDir(), "out")
	if err := Dir(context.Background(), dir, Options{Stamp: true}, build); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "crate/src/notes.txt"), nil, 0o644)
	var asked []string
	got, err := Changed(dir, func(rel string, fi fs.FileInfo) (bool, error) {
		asked = append(asked, rel)
		return rel == "crate/src", nil
	})
	if err != nil || got != "" || len(asked) != 1 {
		t.Errorf("Changed with skip = %q, %v, asked about %q; want \"\" after one question", got, err, asked)
	}
}
