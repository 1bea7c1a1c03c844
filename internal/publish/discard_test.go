package publish

import (
	"io/fs"
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
		{"symlink to a directory", func(t *testing.T, p string) { // moved to another disk
			other := t.TempDir()
			must(t, os.Symlink(other, p))
		}, false},
		{"file", func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("x"), 0o644)) }, true},
		{"dangling symlink", func(t *testing.T, p string) { must(t, os.Symlink("nowhere", p)) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "cache", "crates")
			must(t, os.Mkdir(filepath.Dir(dir), 0o755))
			// cargohash's cache (tagged when it made it), damaged.
			must(t, os.WriteFile(filepath.Join(filepath.Dir(dir), CacheTag), []byte(cacheTagText), 0o644))
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
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Fatalf("not a directory afterwards: %v", err)
			}
			if fi, _ := os.Lstat(dir); tc.name == "symlink to a directory" && fi.Mode()&fs.ModeSymlink == 0 {
				t.Errorf("the symlink was replaced: %v", fi.Mode())
			}
			if want := map[bool]int{true: 1, false: 0}[tc.damaged]; reports != want {
				t.Errorf("damage reported %d times, want %d", reports, want)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 2 {
				t.Errorf("beside it %v, want only %s", entries, CacheTag)
			}
		})
	}
}

// TestMakeDirForeign: a cache directory that is not recognisably
// cargohash's (no tag of its own, and the user's things in it) is not
// healed: a file where cargohash keeps a directory is the user's, and an
// error (found by review: --cache-dir pointed at a directory holding a
// file named crates lost it). A new or cargohash-only directory is tagged.
func TestMakeDirForeign(t *testing.T) {
	for _, tc := range []struct {
		name   string
		make   func(t *testing.T, root string)
		tagged bool // afterwards
		fails  bool
	}{
		{"new", func(*testing.T, string) {}, true, false},
		{"cargohash's, before the tag", func(t *testing.T, root string) {
			must(t, os.Mkdir(filepath.Join(root, "packs"), 0o755))
			must(t, os.Mkdir(filepath.Join(root, ".locks.cargohash-tmp-12"), 0o755))
		}, true, false},
		{"a user's file where crates goes", func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "crates"), []byte("mine"), 0o644))
		}, false, true},
		{"a user's files beside", func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "notes.txt"), []byte("mine"), 0o644))
		}, false, false},
		{"a user's files beside, and where crates goes", func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, "notes.txt"), []byte("mine"), 0o644))
			must(t, os.Symlink("nowhere", filepath.Join(root, "crates")))
		}, false, true},
		{"another tag", func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, CacheTag), []byte("Signature: 8a477f597d28d172789f06886806bc55\n# someone else's\n"), 0o644))
			must(t, os.WriteFile(filepath.Join(root, "crates"), []byte("theirs"), 0o644))
		}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "cache")
			if tc.name != "new" {
				must(t, os.Mkdir(root, 0o755))
			}
			tc.make(t, root)
			before := map[string]string{}
			entries, _ := os.ReadDir(root)
			for _, e := range entries {
				b, _ := os.Readlink(filepath.Join(root, e.Name()))
				if b == "" {
					c, _ := os.ReadFile(filepath.Join(root, e.Name()))
					b = string(c)
				}
				before[e.Name()] = b
			}
			err := MakeDir(filepath.Join(root, "crates"), func() { t.Error("reported as damage") })
			if (err != nil) != tc.fails {
				t.Fatalf("err = %v, want failure %v", err, tc.fails)
			}
			if err != nil && !strings.Contains(err.Error(), "crates is not a directory") {
				t.Errorf("err = %v", err)
			}
			b, _ := os.ReadFile(filepath.Join(root, CacheTag))
			if tagged := string(b) == cacheTagText; tagged != tc.tagged {
				t.Errorf("tagged %v, want %v", tagged, tc.tagged)
			}
			for name, content := range before {
				if name == "crates" && !tc.fails {
					continue
				}
				got, _ := os.Readlink(filepath.Join(root, name))
				if got == "" {
					c, _ := os.ReadFile(filepath.Join(root, name))
					got = string(c)
				}
				if got != content {
					t.Errorf("%s: %q, was %q", name, got, content)
				}
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
