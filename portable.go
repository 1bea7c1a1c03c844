package cargohash

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// Collisions lists the names in the tree at fsys that a case-insensitive or
// Unicode-normalising file system (macOS's APFS and HFS+ by default) would
// take for one: "README.md" and "Readme.md", or the NFC and NFD spellings of
// "é". Nix on such a system unpacks only one of them and computes another
// hash than Linux does (nixpkgs issues #358093 and #274304). Each entry is
// "DIR/NAME1 and DIR/NAME2"; the list is sorted.
func Collisions(fsys fs.FS) ([]string, error) {
	var out []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		entries, err := fs.ReadDir(fsys, p)
		if err != nil {
			return err
		}
		seen := map[string]string{}
		for _, e := range entries {
			// Folding after decomposition compares what APFS compares.
			key := strings.ToLower(norm.NFD.String(e.Name()))
			if first, dup := seen[key]; dup {
				out = append(out, fmt.Sprintf("%q and %q", path.Join(p, first), path.Join(p, e.Name())))
				continue
			}
			seen[key] = e.Name()
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}
