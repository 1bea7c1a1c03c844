package publish

import (
	"os"
	"path/filepath"
	"strings"
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
