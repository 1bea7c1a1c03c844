package vendortree

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/pelletier/go-toml/v2"
)

// gitTree indexes the Cargo.toml files of one git/SHA checkout by package
// name, shallowest first, built once however many crates live in it.
type gitTree struct {
	root   string // real path of git/SHA
	once   sync.Once
	byName map[string]string // package name -> crate directory (first found)
	err    error
}

func (t *gitTree) crateDir(name string) (string, error) {
	t.once.Do(t.index)
	if t.err != nil {
		return "", t.err
	}
	dir, ok := t.byName[name]
	if !ok {
		return "", fmt.Errorf("no Cargo.toml with package name %q in %s", name, t.root)
	}
	return dir, nil
}

func (t *gitTree) index() {
	var manifests []string
	t.err = filepath.WalkDir(t.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "Cargo.toml" && d.Type().IsRegular() {
			manifests = append(manifests, p)
		}
		return nil
	})
	if t.err != nil {
		return
	}
	// Shallowest first, then by path, as nixpkgs sorts them.
	depth := func(p string) int { return strings.Count(p, string(filepath.Separator)) }
	sort.SliceStable(manifests, func(i, j int) bool {
		if di, dj := depth(manifests[i]), depth(manifests[j]); di != dj {
			return di < dj
		}
		return manifests[i] < manifests[j]
	})
	t.byName = map[string]string{}
	for _, m := range manifests {
		data, err := os.ReadFile(m)
		if err != nil {
			t.err = err
			return
		}
		var man struct {
			Package struct{ Name string } `toml:"package"`
			Project struct{ Name string } `toml:"project"`
		}
		if toml.Unmarshal(data, &man) != nil {
			continue // cargo metadata would fail on it too: not a candidate
		}
		name := man.Package.Name
		if name == "" {
			name = man.Project.Name
		}
		if _, ok := t.byName[name]; name != "" && !ok {
			t.byName[name] = filepath.Dir(m)
		}
	}
}

// treeCopier copies a git crate's directory into out, dereferencing
// symlinks.
type treeCopier struct {
	treeRoot string // real path of the checkout: symlinks may not leave it
	warn     func(format string, args ...any)
	out      *memCrate
	// skip, when set, leaves out a path relative to the crate (cargo layout).
	skip func(rel string, isDir bool, src string) bool
	// files, when set, receives the sha256 of every file copied.
	files map[string]string
}

// copyDir copies the directory src (a real path) to rel in the crate
// ("" for its root, which exists). stack holds the real paths of the
// directories being copied, to spot cyclic links.
func (c *treeCopier) copyDir(src, rel string, stack []string) error {
	if rel != "" {
		if err := c.out.MkdirAll(rel); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	stack = append(stack, src)
	for _, e := range entries {
		s := filepath.Join(src, e.Name())
		r := e.Name()
		if rel != "" {
			r = rel + "/" + e.Name()
		}
		real, mode := s, e.Type()
		if mode&fs.ModeSymlink != 0 {
			real, err = filepath.EvalSymlinks(s)
			if err != nil {
				c.warn("dropping symlink %s: %v", s, err)
				continue
			}
			if !within(c.treeRoot, real) {
				c.warn("dropping symlink %s: points outside the checkout to %s", s, real)
				continue
			}
			fi, err := os.Stat(real)
			if err != nil {
				c.warn("dropping symlink %s: %v", s, err)
				continue
			}
			mode = fi.Mode().Type()
			if fi.IsDir() && cyclic(stack, real) {
				c.warn("dropping symlink %s: cyclic, points to %s", s, real)
				continue
			}
		}
		if c.skip != nil && c.skip(r, mode.IsDir(), real) {
			continue
		}
		switch {
		case mode.IsDir():
			err = c.copyDir(real, r, stack)
		case mode.IsRegular():
			err = c.copyFile(real, r)
		default:
			c.warn("dropping %s: not a regular file, directory or symlink", s)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *treeCopier) copyFile(src, rel string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if fi.Mode()&0o100 != 0 { // executable as Nix sees it: by its owner
		perm = 0o755
	}
	sum, err := c.out.Link(rel, src, perm, c.files != nil)
	if err != nil {
		return err
	}
	if c.files != nil {
		c.files[rel] = sum
	}
	return nil
}

func within(root, p string) bool {
	r, err := filepath.Rel(root, p)
	return err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r)
}

// cyclic reports whether copying dir would recurse into itself: dir is one
// of the directories being copied or an ancestor of one.
func cyclic(stack []string, dir string) bool {
	for _, s := range stack {
		if within(dir, s) {
			return true
		}
	}
	return false
}

// depTables are the dependency tables cargo reads in a manifest or in a
// [target.X] table (the underscore spellings are cargo's old aliases).
var depTables = []string{"dependencies", "dev-dependencies", "dev_dependencies", "build-dependencies", "build_dependencies"}

// inheritWorkspace returns the manifest of the crate in crateDir (a path
// in the checkout under treeRoot) with every value it inherits from its
// workspace written in, so that it stands alone in a vendor directory.
// changed is false (and the manifest untouched) when nothing is inherited.
//
// It follows cargo's rules (and nixpkgs' replace-workspace-values): a
// package key `k.workspace = true` takes [workspace.package].k; a
// dependency `{ workspace = true, ... }` takes [workspace.dependencies]'s
// entry, its features extended by the local ones, `optional = true` and
// `default-features = true` applied, other local keys (package, public…)
// kept; `[lints] workspace = true` takes [workspace.lints]. Relative paths
// (a dependency's path, readme, license-file) are rebased from the
// workspace root to the crate's directory, as cargo does.
func inheritWorkspace(manifest []byte, crateDir, treeRoot string) (out []byte, changed bool, err error) {
	if !bytes.Contains(manifest, []byte("workspace")) {
		return manifest, false, nil
	}
	var man map[string]any
	if err := toml.Unmarshal(manifest, &man); err != nil {
		return nil, false, fmt.Errorf("%s: %w", filepath.Join(crateDir, "Cargo.toml"), err)
	}
	var ws map[string]any
	var wsRoot string
	workspace := func() (map[string]any, error) {
		if ws != nil {
			return ws, nil
		}
		root, w, err := findWorkspace(man, crateDir, treeRoot)
		if err != nil {
			return nil, err
		}
		ws, wsRoot = w, root
		return ws, nil
	}
	rebase := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		r, err := filepath.Rel(crateDir, filepath.Join(wsRoot, p))
		if err != nil {
			return p
		}
		return filepath.ToSlash(r)
	}

	pkgKey := "package"
	if _, ok := man[pkgKey]; !ok {
		pkgKey = "project"
	}
	if pkg, ok := man[pkgKey].(map[string]any); ok {
		for k, v := range pkg {
			if !inherits(v) {
				continue
			}
			w, err := workspace()
			if err != nil {
				return nil, false, err
			}
			wp, _ := w["package"].(map[string]any)
			val, ok := wp[k]
			if !ok {
				return nil, false, fmt.Errorf("package.%s inherits from the workspace, which has no workspace.package.%s", k, k)
			}
			if s, ok := val.(string); ok && (k == "readme" || k == "license-file") {
				val = rebase(s)
			}
			pkg[k] = val
			changed = true
		}
	}

	deps := func(tables map[string]any) error {
		for _, tk := range depTables {
			t, ok := tables[tk].(map[string]any)
			if !ok {
				continue
			}
			for name, v := range t {
				if !inherits(v) {
					continue
				}
				w, err := workspace()
				if err != nil {
					return err
				}
				wd, _ := w["dependencies"].(map[string]any)
				wdep, ok := wd[name]
				if !ok {
					return fmt.Errorf("%s.%s inherits from the workspace, which has no workspace.dependencies.%s", tk, name, name)
				}
				t[name], err = mergeDependency(v.(map[string]any), wdep, rebase)
				if err != nil {
					return fmt.Errorf("%s.%s: %w", tk, name, err)
				}
				changed = true
			}
		}
		return nil
	}
	if err := deps(man); err != nil {
		return nil, false, err
	}
	if targets, ok := man["target"].(map[string]any); ok {
		for _, t := range targets {
			if tt, ok := t.(map[string]any); ok {
				if err := deps(tt); err != nil {
					return nil, false, err
				}
			}
		}
	}
	if lints, ok := man["lints"].(map[string]any); ok && lints["workspace"] == true {
		w, err := workspace()
		if err != nil {
			return nil, false, err
		}
		wl, ok := w["lints"]
		if !ok {
			return nil, false, errors.New("lints inherit from the workspace, which has no workspace.lints")
		}
		man["lints"] = wl
		changed = true
	}
	if !changed {
		return manifest, false, nil
	}
	out, err = toml.Marshal(man)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

func inherits(v any) bool {
	m, ok := v.(map[string]any)
	return ok && m["workspace"] == true
}

// mergeDependency applies a local `{ workspace = true, … }` entry to the
// workspace's declaration of the dependency.
func mergeDependency(local map[string]any, wdep any, rebase func(string) string) (map[string]any, error) {
	final := map[string]any{}
	switch w := wdep.(type) {
	case string:
		final["version"] = w
	case map[string]any:
		for k, v := range w {
			final[k] = v
		}
	default:
		return nil, fmt.Errorf("workspace dependency is a %T, want a string or a table", wdep)
	}
	if p, ok := final["path"].(string); ok {
		final["path"] = rebase(p)
	}
	var features []any
	seen := map[any]bool{}
	for _, src := range []any{final["features"], local["features"]} {
		list, _ := src.([]any)
		for _, f := range list {
			if !seen[f] {
				seen[f] = true
				features = append(features, f)
			}
		}
	}
	if len(features) > 0 {
		final["features"] = features
	}
	for _, k := range []string{"default-features", "default_features"} {
		if local[k] == true && final["default-features"] != true && final["default_features"] != true {
			delete(final, "default_features")
			final["default-features"] = true
		}
	}
	if local["optional"] == true {
		final["optional"] = true
	}
	for k, v := range local {
		switch k {
		case "workspace", "features", "default-features", "default_features", "optional":
		default:
			final[k] = v // package, public, artifact…: cargo's own keys, kept
		}
	}
	return final, nil
}

// findWorkspace finds the workspace root of the crate in crateDir: the
// directory named by package.workspace, else the crate's own directory if
// its manifest has [workspace], else the nearest ancestor up to treeRoot
// whose Cargo.toml has [workspace].
func findWorkspace(man map[string]any, crateDir, treeRoot string) (string, map[string]any, error) {
	if w, ok := man["workspace"].(map[string]any); ok {
		return crateDir, w, nil
	}
	if pkg, ok := man["package"].(map[string]any); ok {
		if p, ok := pkg["workspace"].(string); ok {
			dir := filepath.Join(crateDir, p)
			w, err := readWorkspace(dir)
			if err != nil {
				return "", nil, err
			}
			if w == nil {
				return "", nil, fmt.Errorf("package.workspace points to %s, which has no [workspace]", dir)
			}
			return dir, w, nil
		}
	}
	for dir := filepath.Dir(crateDir); within(treeRoot, dir); dir = filepath.Dir(dir) {
		w, err := readWorkspace(dir)
		if err != nil {
			return "", nil, err
		}
		if w != nil {
			return dir, w, nil
		}
		if dir == treeRoot {
			break
		}
	}
	return "", nil, errors.New("inherits from a workspace, but no Cargo.toml with [workspace] is above it in the checkout")
}

// readWorkspace returns the [workspace] table of dir/Cargo.toml, nil if
// there is no such file or table.
func readWorkspace(dir string) (map[string]any, error) {
	data, err := os.ReadFile(filepath.Join(dir, "Cargo.toml"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m struct {
		Workspace map[string]any `toml:"workspace"`
	}
	if err := toml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "Cargo.toml"), err)
	}
	return m.Workspace, nil
}
