package publish

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestDiscard(t *testing.T) {
	for _, tc := range []struct {
		name string
		make func(p string) error
	}{
		{"file", func(p string) error { return os.WriteFile(p, []byte("x"), 0o444) }},
		{"tree", func(p string) error { return os.MkdirAll(filepath.Join(p, "a", "b"), 0o755) }},
		{"symlink", func(p string) error { return os.Symlink("/nonexistent", p) }},
		{"missing", func(p string) error { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			keep := filepath.Join(dir, "keep")
			os.WriteFile(keep, []byte("kept"), 0o644)
			p := filepath.Join(dir, "entry")
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			if err := Discard(p); err != nil {
				t.Fatal(err)
			}
			if got := listing(t, dir); len(got) != 2 || !strings.Contains(got["keep"], "kept") {
				t.Errorf("after Discard: %v, want only keep", got)
			}
		})
	}
}

// TestMakeDir: a missing or present directory is no damage; a file or a
// dangling symlink in its place is replaced and reported once, however many
// callers find it at the same time; nothing outside is touched.
func TestMakeDir(t *testing.T) {
	for _, tc := range []struct {
		name    string
		make    func(t *testing.T, p string)
		damaged bool
	}{
		{"missing", func(*testing.T, string) {}, false},
		{"directory", func(t *testing.T, p string) { must(t, os.Mkdir(p, 0o755)) }, false},
		{"file", func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("x"), 0o644)) }, true},
		{"dangling symlink", func(t *testing.T, p string) { must(t, os.Symlink("nowhere", p)) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "cache", "crates")
			must(t, os.Mkdir(filepath.Dir(dir), 0o755))
			tc.make(t, dir)
			var mu sync.Mutex
			reports := 0
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = MakeDir(dir, func() { mu.Lock(); reports++; mu.Unlock() })
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
				t.Fatalf("not a directory afterwards: %v", err)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.damaged]; reports != want {
				t.Errorf("damage reported %d times, want %d", reports, want)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
				t.Errorf("%d entries beside it, want none: %v", len(entries)-1, entries)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
