package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/reftest"
)

func listing(t *testing.T, dir string) map[string]string { return reftest.Snapshot(t, dir) }

// file is how reftest.Snapshot shows a 0644 file holding data.
func file(data string) string { return fmt.Sprintf("file -rw-r--r-- %q", data) }

func keys(m map[string]string) []string {
	var k []string
	for p := range m {
		k = append(k, p)
	}
	sort.Strings(k)
	return k
}

func noTemps(t *testing.T, dir string) {
	t.Helper()
	for p := range listing(t, dir) {
		if IsTemp(filepath.Base(p)) {
			t.Errorf("temporary name left behind: %s", p)
		}
	}
}

// ownIfMarked recognises a directory whose every entry is named "own*".
func ownIfMarked(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "own") {
			return e.Name(), nil
		}
	}
	return "", nil
}

func TestDir(t *testing.T) {
	build := func(tmp string) error { return os.WriteFile(filepath.Join(tmp, "own-new"), []byte("new"), 0o644) }
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T, dir string) // dir holds the destination "out"
		refused string                         // substring of the refusal; "" = written
	}{
		{"missing", func(t *testing.T, dir string) {}, ""},
		{"empty dir", func(t *testing.T, dir string) { os.Mkdir(filepath.Join(dir, "out"), 0o755) }, ""},
		{"own earlier output", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "out", "own-old"), 0o755)
			os.WriteFile(filepath.Join(dir, "out", "own-old", "x"), []byte("x"), 0o644)
			os.Symlink(filepath.Join(dir, "precious"), filepath.Join(dir, "out", "own-link"))
		}, ""},
		{"foreign file", func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "out"), 0o755)
			os.WriteFile(filepath.Join(dir, "out", "notes.txt"), []byte("mine"), 0o644)
		}, "holds notes.txt"},
		{"regular file", func(t *testing.T, dir string) { os.WriteFile(filepath.Join(dir, "out"), []byte("mine"), 0o644) }, "is a file"},
		{"symlink to dir", func(t *testing.T, dir string) {
			os.Mkdir(filepath.Join(dir, "real"), 0o755)
			os.Symlink("real", filepath.Join(dir, "out"))
		}, "symbolic link to real"},
		{"dangling symlink", func(t *testing.T, dir string) { os.Symlink("nowhere", filepath.Join(dir, "out")) }, "symbolic link"},
		{"holds a kept path", func(t *testing.T, dir string) {
			os.MkdirAll(filepath.Join(dir, "out", "own-proj"), 0o755)
			os.WriteFile(filepath.Join(dir, "out", "own-proj", "Cargo.lock"), []byte("lock"), 0o644)
		}, "holds the input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "precious"), []byte("keep"), 0o644)
			tc.setup(t, dir)
			before := listing(t, dir)
			out := filepath.Join(dir, "out")
			opts := Options{Own: ownIfMarked, Keep: []string{filepath.Join(dir, "out", "own-proj", "Cargo.lock")}, What: "a test tree"}
			err := Dir(context.Background(), out, opts, build)
			after := listing(t, dir)
			noTemps(t, dir)
			if tc.refused != "" {
				var re *RefusedError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.refused) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("err = %v, want a one-line refusal with %q", err, tc.refused)
				}
				if strings.Join(keys(before), ",") != strings.Join(keys(after), ",") {
					t.Fatalf("refused, but the tree changed:\n%v\n%v", keys(before), keys(after))
				}
				for p, v := range before {
					if after[p] != v {
						t.Errorf("%s changed", p)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{".": "/", "precious": "keep", "out": "/", "out/own-new": "new"}
			if before["real"] != "" {
				want["real"] = "/"
			}
			if strings.Join(keys(want), ",") != strings.Join(keys(after), ",") || after["precious"] != file("keep") {
				t.Fatalf("after: %v", after)
			}
		})
	}
}

func TestDirWorkingDirectory(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	if err := os.Chdir(filepath.Join(dir, "a", "b")); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{".", "..", filepath.Join(dir, "a")} {
		err := Dir(context.Background(), out, Options{}, func(string) error { return nil })
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "working directory") {
			t.Errorf("%s: err = %v, want a refusal naming the working directory", out, err)
		}
	}
	noTemps(t, dir)
}

func TestFailureLeavesNothing(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		run  func(ctx context.Context, cancel func(), out string) error
	}{
		{"dir build fails", func(ctx context.Context, _ func(), out string) error {
			return Dir(ctx, out, Options{}, func(tmp string) error {
				os.WriteFile(filepath.Join(tmp, "half"), []byte("x"), 0o644)
				return boom
			})
		}},
		{"dir cancelled mid-build", func(ctx context.Context, cancel func(), out string) error {
			return Dir(ctx, out, Options{}, func(tmp string) error {
				os.WriteFile(filepath.Join(tmp, "half"), []byte("x"), 0o644)
				cancel() // a build that does not notice still is not published
				return nil
			})
		}},
		{"file write fails", func(ctx context.Context, _ func(), out string) error {
			return File(ctx, out, 0o644, Options{}, func(w io.Writer) error {
				w.Write([]byte("half"))
				return boom
			})
		}},
		{"file cancelled mid-write", func(ctx context.Context, cancel func(), out string) error {
			return File(ctx, out, 0o644, Options{}, func(w io.Writer) error {
				w.Write([]byte("half"))
				cancel()
				return ctx.Err()
			})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := tc.run(ctx, cancel, filepath.Join(dir, "out"))
			if err == nil {
				t.Fatal("no error")
			}
			if got := listing(t, dir); len(got) != 1 {
				t.Fatalf("left behind: %v", keys(got))
			}
		})
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.tar")
	other := filepath.Join(dir, "other")
	os.WriteFile(other, []byte("other"), 0o644)
	os.Link(other, out) // replacing out must not write through to its other name
	write := func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }
	if err := File(context.Background(), out, 0o644, Options{}, write); err != nil {
		t.Fatal(err)
	}
	if got := listing(t, dir); got["x.tar"] != file("new") || got["other"] != file("other") || len(got) != 3 {
		t.Fatalf("after: %v", got)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v", fi.Mode())
	}
	os.Mkdir(filepath.Join(dir, "d.tar"), 0o755)
	os.Symlink("other", filepath.Join(dir, "l.tar"))
	for name, want := range map[string]string{
		"d.tar":         "is a directory",
		"l.tar":         "symbolic link to other",
		"missing/x.tar": "parent directory",
		"other/x.tar":   "is not a directory",
	} {
		err := File(context.Background(), filepath.Join(dir, name), 0o644, Options{}, write)
		if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want a refusal with %q", name, err, want)
		}
	}
	if got := listing(t, dir); got["other"] != file("other") || len(got) != 5 {
		t.Fatalf("after refusals: %v", got)
	}
}

func TestMakeParents(t *testing.T) {
	out := filepath.Join(t.TempDir(), "a", "b", "c")
	err := File(context.Background(), out, 0o644, Options{MakeParents: true}, func(w io.Writer) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err != nil {
		t.Fatal(err)
	}
}
