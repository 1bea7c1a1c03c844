package vendortree

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

const sha1 = "1111111111111111111111111111111111111111"
const sha2 = "2222222222222222222222222222222222222222"

func gitLock(pkgs ...[3]string) string {
	var b strings.Builder
	b.WriteString("version = 4\n")
	for _, p := range pkgs {
		b.WriteString("\n[[package]]\nname = \"" + p[0] + "\"\nversion = \"" + p[1] + "\"\nsource = \"" + p[2] + "\"\n")
	}
	return b.String()
}

// symlinkStaging is a staging dir with one git crate a whose checkout
// holds symlinks of every kind, a nested package, a .gitignore and an
// executable.
func symlinkStaging(t *testing.T) (staging, tree string) {
	staging = t.TempDir()
	tree = filepath.Join(staging, "git", sha1)
	mustWrite(t, filepath.Join(staging, "Cargo.lock"), []byte(gitLock([3]string{"a", "1.0.0", "git+https://example.com/r#" + sha1})), 0o644)
	mustWrite(t, filepath.Join(tree, "a", "Cargo.toml"), []byte("[package]\nname = \"a\"\nversion = \"1.0.0\"\n"), 0o644)
	mustWrite(t, filepath.Join(tree, "a", "src", "lib.rs"), []byte("\n"), 0o644)
	mustWrite(t, filepath.Join(tree, "a", "nested", "Cargo.toml"), []byte("[package]\nname = \"nested\"\n"), 0o644)
	mustWrite(t, filepath.Join(tree, "a", ".gitignore"), []byte("x\n"), 0o644)
	mustWrite(t, filepath.Join(tree, "a", "run.sh"), []byte("#!/bin/sh\n"), 0o755)
	mustWrite(t, filepath.Join(tree, "deep", "a", "Cargo.toml"), []byte("[package]\nname = \"a\"\n"), 0o644) // deeper: not chosen
	mustWrite(t, filepath.Join(tree, "data", "f.txt"), []byte("data\n"), 0o644)
	for link, target := range map[string]string{
		"a/dangling": "nowhere", "a/loop": "..", "a/self": "self", "a/escape": "/etc/hostname",
		"a/up": "../../../outside", "a/data": "../data",
	} {
		if err := os.Symlink(target, filepath.Join(tree, link)); err != nil {
			t.Fatal(err)
		}
	}
	return staging, tree
}

func TestGitCrateSymlinksAndNesting(t *testing.T) {
	staging, tree := symlinkStaging(t)
	for _, layout := range []Kind{Nixpkgs, Cargo} {
		var log strings.Builder
		out := filepath.Join(t.TempDir(), "v")
		if err := fromStaging(context.Background(), staging, out, Options{Layout: layout, Log: &log}); err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"a/dangling", "a/loop", "a/self", "a/escape", "a/up"} {
			if !strings.Contains(log.String(), filepath.Join(tree, w)) {
				t.Errorf("%v: no warning for %s in:\n%s", layout, w, log.String())
			}
		}
		dir := "source-git-0/a-1.0.0"
		if layout == Cargo {
			dir = "a"
		}
		got := readTree(t, filepath.Join(out, dir))
		if e := got["data/f.txt"]; e.Data != "data\n" || !e.Mode.IsRegular() {
			t.Errorf("%v: symlinked dir not copied: %+v", layout, e)
		}
		if got["run.sh"].Mode.Perm() != 0o755 {
			t.Errorf("%v: run.sh mode %v", layout, got["run.sh"].Mode)
		}
		_, nested := got["nested/Cargo.toml"]
		_, ignore := got[".gitignore"]
		if layout == Cargo {
			if nested || ignore {
				t.Errorf("cargo layout kept nested package (%v) or .gitignore (%v)", nested, ignore)
			}
			want := `{"files":{"Cargo.toml":"`
			if s := got[".cargo-checksum.json"].Data; !strings.HasPrefix(s, want) || !strings.HasSuffix(s, `},"package":null}`) || !strings.Contains(s, `"data/f.txt":"`) {
				t.Errorf("cargo checksum %s", s)
			}
		} else if !nested || !ignore {
			t.Errorf("nixpkgs layout dropped nested package (%v) or .gitignore (%v)", nested, ignore)
		}
	}
}

func TestGitCrateErrors(t *testing.T) {
	tests := []struct {
		name, lock, want string
		files            map[string]string
	}{
		{"same name and version in one source-git", gitLock(
			[3]string{"a", "1.0.0", "git+https://example.com/r?branch=main#" + sha1},
			[3]string{"a", "1.0.0", "git+https://example.com/r?branch=main#" + sha2}),
			"a@1.0.0: two git crates with this name and version share source-git-0", nil},
		{"missing crate", gitLock([3]string{"zz", "1.0.0", "git+https://example.com/r#" + sha1}),
			`zz@1.0.0 (git ` + sha1 + `): no Cargo.toml with package name "zz"`, map[string]string{"Cargo.toml": "[package]\nname = \"a\"\n"}},
		{"missing checkout", gitLock([3]string{"a", "1.0.0", "git+https://example.com/r#" + sha2}),
			"a@1.0.0: git checkout", map[string]string{"Cargo.toml": "[package]\nname = \"a\"\n"}},
		{"inherits without a workspace", gitLock([3]string{"a", "1.0.0", "git+https://example.com/r#" + sha1}),
			"no Cargo.toml with [workspace]", map[string]string{"a/Cargo.toml": "[package]\nname = \"a\"\nversion.workspace = true\n"}},
		{"inherits a missing key", gitLock([3]string{"a", "1.0.0", "git+https://example.com/r#" + sha1}),
			"dependencies.x inherits from the workspace, which has no workspace.dependencies.x", map[string]string{
				"Cargo.toml":   "[workspace]\nmembers = [\"a\"]\n",
				"a/Cargo.toml": "[package]\nname = \"a\"\n[dependencies]\nx = { workspace = true }\n"}},
		{"same crate from two registries", "version = 4\n\n[[package]]\nname = \"r\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"" + strings.Repeat("a", 64) + "\"\n\n[[package]]\nname = \"r\"\nversion = \"1.0.0\"\nsource = \"sparse+https://other.example/\"\nchecksum = \"" + strings.Repeat("b", 64) + "\"\n",
			"r@1.0.0: the same crate from two registries", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			staging := t.TempDir()
			mustWrite(t, filepath.Join(staging, "Cargo.lock"), []byte(tt.lock), 0o644)
			for name, body := range tt.files {
				mustWrite(t, filepath.Join(staging, "git", sha1, name), []byte(body), 0o644)
			}
			out := filepath.Join(t.TempDir(), "v")
			err := fromStaging(context.Background(), staging, out, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("output left after failure")
			}
		})
	}
}

func TestInheritWorkspace(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "Cargo.toml"), []byte(`[workspace]
members = ["crates/*"]
[workspace.package]
version = "1.2.3"
readme = "README.md"
authors = ["A"]
[workspace.dependencies]
simple = "1.0"
feat = { version = "2", features = ["a"], default-features = false }
local = { path = "crates/local", version = "0.1" }
[workspace.lints.clippy]
all = "warn"
`), 0o644)
	crate := filepath.Join(root, "crates", "c")
	man := []byte(`[package]
name = "c"
version.workspace = true
readme = { workspace = true }
authors.workspace = true
edition = "2021"

[dependencies]
simple = { workspace = true, optional = true }
feat = { workspace = true, features = ["b", "a"], default-features = true }
renamed = { workspace = true, package = "feat" }
plain = "3"

[build-dependencies]
local.workspace = true

[target.'cfg(unix)'.dev-dependencies]
simple = { workspace = true }

[lints]
workspace = true
`)
	mustWrite(t, filepath.Join(crate, "Cargo.toml"), man, 0o644)
	// "renamed" is not in the workspace: make the key exist there.
	mustWrite(t, filepath.Join(root, "Cargo.toml"), append(mustRead(t, filepath.Join(root, "Cargo.toml")), []byte("\n[workspace.dependencies.renamed]\nversion = \"2\"\n")...), 0o644)
	out, changed, err := inheritWorkspace(man, crate, root)
	if err != nil || !changed {
		t.Fatalf("changed %v, err %v", changed, err)
	}
	var got map[string]any
	if err := toml.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	check := func(path string, want any) {
		t.Helper()
		var v any = got
		for _, k := range strings.Split(path, "|") {
			v = v.(map[string]any)[k]
		}
		if s, w := toString(v), toString(want); s != w {
			t.Errorf("%s = %s, want %s", path, s, w)
		}
	}
	check("package|version", "1.2.3")
	check("package|readme", "../../README.md")
	check("package|authors", []any{"A"})
	check("dependencies|simple", map[string]any{"version": "1.0", "optional": true})
	check("dependencies|feat", map[string]any{"version": "2", "features": []any{"a", "b"}, "default-features": true})
	check("dependencies|renamed", map[string]any{"version": "2", "package": "feat"})
	check("dependencies|plain", "3")
	check("build-dependencies|local", map[string]any{"version": "0.1", "path": "../local"})
	check("target|cfg(unix)|dev-dependencies|simple", map[string]any{"version": "1.0"})
	check("lints", map[string]any{"clippy": map[string]any{"all": "warn"}})

	plain := []byte("[package]\nname = \"p\"\nversion = \"1.0.0\"\n")
	if out, changed, err := inheritWorkspace(plain, crate, root); err != nil || changed || string(out) != string(plain) {
		t.Errorf("manifest without inheritance changed: %v %v %q", changed, err, out)
	}
}

func toString(v any) string {
	b, err := toml.Marshal(map[string]any{"v": v})
	if err != nil {
		return "?"
	}
	return string(b)
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
