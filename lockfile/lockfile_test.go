package lockfile

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/reftest"
)

var update = flag.Bool("update", false, "regenerate testdata/v*.lock with the real cargo (testdata/gen.sh)")

// TestGenerate regenerates the cargo-made lock files with -update.
func TestGenerate(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata with cargo")
	}
	for _, tool := range []string{"cargo", "git", "python3"} {
		reftest.Need(t, tool)
	}
	cmd := exec.Command("sh", "gen.sh")
	cmd.Dir = "testdata"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen.sh: %v\n%s", err, out)
	}
}

const (
	gitURL  = "file:///tmp/cargohash-lockfile-gen/repo"
	sha     = "aee9f83e2312ab2d27ce8bd66969a5d1f27f073f"
	regSum  = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sregSum = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	sparse  = "sparse+http://127.0.0.1:9/index/"
)

// cargoLock is what the lock files cargo wrote in testdata (see gen.sh)
// hold, at the given version; lines are the lines of the [[package]] headers.
func cargoLock(version int, lines []int, regdepSum string) []Package {
	git := func(sel, kind, value string) Package {
		raw := "git+" + gitURL + sel + "#" + sha
		return Package{Name: "gdep", Version: "0.1.0", Source: Source{
			Raw: raw, Kind: Git, URL: gitURL, Ref: GitRef{Kind: kind, Value: value}, Commit: sha}}
	}
	aPlusB, featureX := git("?branch=a+b", "branch", "a+b"), git("?branch=feature/x", "branch", "feature/x")
	if version >= 4 {
		aPlusB, featureX = git("?branch=a%2Bb", "branch", "a+b"), git("?branch=feature%2Fx", "branch", "feature/x")
	}
	ps := []Package{
		{Name: "app", Version: "0.1.0"},
		git("?tag=v1.0", "tag", "v1.0"),
		aPlusB,
		featureX,
		git("?rev="+sha, "rev", sha),
		git("", "", ""),
		{Name: "local", Version: "0.2.0"},
		{Name: "regdep", Version: "1.0.0", Checksum: regdepSum, Source: Source{
			Raw: CratesIORegistry, Kind: Registry, URL: "https://github.com/rust-lang/crates.io-index"}},
		{Name: "sregdep", Version: "2.1.0", Checksum: sregSum, Source: Source{
			Raw: sparse, Kind: Sparse, URL: "http://127.0.0.1:9/index/"}},
	}
	for i := range ps {
		ps[i].Line = lines[i]
	}
	return ps
}

func TestParseCargoMade(t *testing.T) {
	tests := []struct {
		file    string
		version int
		want    []Package
		appDeps int
	}{
		{"v1.lock", 1, cargoLock(1, []int{3, 17, 22, 27, 32, 37, 42, 46, 51}, ""), 8},
		{"v2.lock", 2, cargoLock(2, []int{3, 17, 22, 27, 32, 37, 42, 46, 52}, regSum), 8},
		{"v3.lock", 3, cargoLock(3, []int{5, 19, 24, 29, 34, 39, 44, 48, 54}, regSum), 8},
		{"v4.lock", 4, cargoLock(4, []int{5, 19, 24, 29, 34, 39, 44, 48, 54}, regSum), 8},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			l, err := Parse(tt.file, data)
			if err != nil {
				t.Fatal(err)
			}
			if l.Name != tt.file || l.Version != tt.version {
				t.Errorf("Name, Version = %q, %d; want %q, %d", l.Name, l.Version, tt.file, tt.version)
			}
			if len(l.Packages[0].Dependencies) != tt.appDeps {
				t.Errorf("app has %d dependencies, want %d: %q", len(l.Packages[0].Dependencies), tt.appDeps, l.Packages[0].Dependencies)
			}
			for i := range l.Packages {
				l.Packages[i].Dependencies = nil
			}
			if !reflect.DeepEqual(l.Packages, tt.want) {
				for i := range max(len(l.Packages), len(tt.want)) {
					var got, want Package
					if i < len(l.Packages) {
						got = l.Packages[i]
					}
					if i < len(tt.want) {
						want = tt.want[i]
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("package %d:\n got  %+v\n want %+v", i, got, want)
					}
				}
			}
			if n := len(l.Fetchable()); n != 7 {
				t.Errorf("Fetchable: %d packages, want 7", n)
			}
			for _, p := range l.Fetchable() {
				if p.Source.Kind == Local {
					t.Errorf("Fetchable holds local %s", p.ID())
				}
			}
		})
	}
}

func TestParse(t *testing.T) {
	const reg = `source = "registry+https://github.com/rust-lang/crates.io-index"` + "\n"
	tests := []struct {
		name, lock string
		version    int
		want       []Package // compared on Name, Version, Source.Raw, Checksum, Line
	}{
		{"v1 none and missing", `[[package]]
name = "a"
version = "1.0.0"
` + reg + `
[[package]]
name = "b"
version = "2.0.0"
` + reg + `
[[package]]
name = "c"
version = "3.0.0"
` + reg + `
[metadata]
"checksum a 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)" = "<none>"
"checksum b 2.0.0 (registry+https://github.com/rust-lang/crates.io-index)" = "` + regSum + `"
"checksum zzz 9.0.0 (registry+https://github.com/rust-lang/crates.io-index)" = "` + regSum + `"
"other" = "ignored"
`, 1, []Package{
			{Name: "a", Version: "1.0.0", Source: Source{Raw: CratesIORegistry}, Line: 1},
			{Name: "b", Version: "2.0.0", Source: Source{Raw: CratesIORegistry}, Checksum: regSum, Line: 6},
			{Name: "c", Version: "3.0.0", Source: Source{Raw: CratesIORegistry}, Line: 11},
		}},
		{"v2 metadata without checksums", "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n\n[metadata]\nx = \"y\"\n", 2,
			[]Package{{Name: "a", Version: "1.0.0", Line: 1}}},
		{"v3 checksum key", "# c\n\nversion = 3\n\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n" + reg + "checksum = \"" + regSum + "\"\n", 3,
			[]Package{{Name: "a", Version: "1.0.0", Source: Source{Raw: CratesIORegistry}, Checksum: regSum, Line: 5}}},
		{"v4 registry without checksum", "version = 4\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n" + reg, 4,
			[]Package{{Name: "a", Version: "1.0.0", Source: Source{Raw: CratesIORegistry}, Line: 2}}},
		{"same name and version, two sources", "version = 4\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n" + reg +
			"[[package]]\nname = \"a\"\nversion = \"1.0.0\"\nsource = \"" + sparse + "\"\n", 4,
			[]Package{
				{Name: "a", Version: "1.0.0", Source: Source{Raw: CratesIORegistry}, Line: 2},
				{Name: "a", Version: "1.0.0", Source: Source{Raw: sparse}, Line: 6},
			}},
		{"CRLF and odd spacing", "version = 4\r\n\r\n[[ package ]]\r\nname = \"a\"\r\nversion = \"1.0.0\"\r\n\r\n  [[\"package\"]] # x\r\nname = \"b\"\r\nversion = \"1.0.0\"\r\n", 4,
			[]Package{{Name: "a", Version: "1.0.0", Line: 3}, {Name: "b", Version: "1.0.0", Line: 7}}},
		{"inline array has no lines", "version = 4\npackage = [{name = \"a\", version = \"1.0.0\"}]\n", 4,
			[]Package{{Name: "a", Version: "1.0.0"}}},
		{"header text in a string is not a header", "version = 4\n[[package]]\nname = \"a\"\nversion = \"1.0.0\"\n[x]\ns = '''\n[[package]]\n'''\n[[package]]\nname = \"b\"\nversion = \"1.0.0\"\n", 4,
			[]Package{{Name: "a", Version: "1.0.0", Line: 2}, {Name: "b", Version: "1.0.0", Line: 9}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse("Cargo.lock", []byte(tt.lock))
			if err != nil {
				t.Fatal(err)
			}
			if l.Version != tt.version {
				t.Errorf("Version = %d, want %d", l.Version, tt.version)
			}
			var got []Package
			for _, p := range l.Packages {
				got = append(got, Package{Name: p.Name, Version: p.Version, Source: Source{Raw: p.Source.Raw}, Checksum: p.Checksum, Line: p.Line})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	const noPkgs = "Cargo.lock: no [[package]] entries, so not a Cargo.lock cargo wrote; make the lock with `cargo generate-lockfile`"
	const pkg = "[[package]]\nname = \"serde\"\nversion = \"1.0.197\"\n"
	tests := []struct {
		name, lock string
		want       string // the whole message
	}{
		{"malformed TOML", "version = 4\n\n[[package]]\nname = \"x\n", "Cargo.lock:4: not valid TOML: basic strings cannot have new lines"},
		{"duplicate key", "version = 4\n" + pkg + "name = \"y\"\n", "Cargo.lock:5: not valid TOML: key name is already defined"},
		{"not TOML", "\x00\x01binary\n", "Cargo.lock:1: not valid TOML: invalid character at start of key: U+0000"},
		{"empty", "", "Cargo.lock: empty file, not a Cargo.lock; make the lock with `cargo generate-lockfile`"},
		{"blank", " \n\n", "Cargo.lock: empty file, not a Cargo.lock; make the lock with `cargo generate-lockfile`"},
		{"no packages", "version = 4\n", noPkgs},
		{"only comments", "# This file is automatically @generated by Cargo.\n", noPkgs},
		{"manifest", "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n", "Cargo.lock:1: " + ErrManifest.Error()},
		{"minimal manifest", "[package]\nname = \"demo\"\nversion = \"0.1.0\"\n", "Cargo.lock:1: " + ErrManifest.Error()},
		{"workspace manifest", "# root\n[workspace]\nmembers = [\"a\"]\n", "Cargo.lock:2: " + ErrManifest.Error()},
		{"manifest with deps", "[package]\nname = \"demo\"\nversion = 1\n[dependencies]\nserde = { version = \"1\" }\n", "Cargo.lock:1: " + ErrManifest.Error()},
		{"bins", "[[bin]]\nname = \"x\"\n", "Cargo.lock:1: " + ErrManifest.Error()},
		{"version 5", "# x\nversion = 5\n", "Cargo.lock:2: unsupported lock file version 5 (want 3 or 4, or none for 1 and 2)"},
		{"version 2 written", "version = 2\n", "Cargo.lock:1: unsupported lock file version 2 (want 3 or 4, or none for 1 and 2)"},
		{"version string", "version = \"4\"\n", "Cargo.lock:1: lock file version is a string, not an integer"},
		{"missing name", "version = 4\n\n[[package]]\nversion = \"1.0.0\"\n", `Cargo.lock:3: [[package]] 1 (version "1.0.0") has no name`},
		{"missing both", "version = 4\n" + pkg + "[[package]]\nsource = \"x\"\n", `Cargo.lock:5: [[package]] 2 has no name and no version`},
		{"missing version", "version = 4\n[[package]]\nname = \"serde\"\n", "Cargo.lock:2: package serde: missing version"},
		{"name a path", "version = 4\n[[package]]\nname = \"../../evil\"\nversion = \"1.0.1\"\n", `Cargo.lock:2: [[package]] 1: name "../../evil" is not a package name`},
		{"name dot-dot", "version = 4\n[[package]]\nname = \"..\"\nversion = \"1.0.1\"\n", `Cargo.lock:2: [[package]] 1: name ".." is not a package name`},
		{"version a path", "version = 4\n[[package]]\nname = \"serde\"\nversion = \"1.0/../../x\"\n", `Cargo.lock:2: [[package]] 1 (serde): version "1.0/../../x" is not a version`},
		{"name with a newline", "version = 4\n[[package]]\nname = \"a\\nb\"\nversion = \"1.0.1\"\n", `Cargo.lock:2: [[package]] 1: name "a\nb" is not a package name`},
		{"name not a string", "version = 4\n[[package]]\nname = 1\nversion = \"1.0.0\"\n", "Cargo.lock:2: name is an integer, not a string"},
		{"dependencies not strings", "version = 4\n" + pkg + "dependencies = [1]\n", "Cargo.lock:2: package serde@1.0.197: dependencies: entry 1 is an integer, not a string"},
		{"path source", "version = 4\n" + pkg + "source = \"path+file:///src/serde\"\n",
			`Cargo.lock:2: package serde@1.0.197: source "path+file:///src/serde": unsupported source kind (want registry+, sparse+ or git+)`},
		{"garbage source", "version = 4\n" + pkg + "source = \"serde\"\n",
			`Cargo.lock:2: package serde@1.0.197: source "serde": unsupported source kind (want registry+, sparse+ or git+)`},
		{"git without commit", "version = 4\n" + pkg + "source = \"git+https://github.com/serde-rs/serde?branch=main\"\n",
			`Cargo.lock:2: package serde@1.0.197: source "git+https://github.com/serde-rs/serde?branch=main": git source is not git+URL[?rev=X|?tag=X|?branch=X]#COMMIT`},
		{"git short commit", "version = 4\n" + pkg + "source = \"git+https://github.com/serde-rs/serde#aee9f83\"\n",
			`Cargo.lock:2: package serde@1.0.197: source "git+https://github.com/serde-rs/serde#aee9f83": commit "aee9f83" is not a full lowercase hex SHA`},
		{"bad checksum", "version = 4\n" + pkg + reg() + "checksum = \"xyz\"\n",
			`Cargo.lock:2: package serde@1.0.197: checksum "xyz" is not 64 lowercase hex digits`},
		{"upper-case checksum", "version = 4\n" + pkg + reg() + "checksum = \"" + strings.ToUpper(regSum) + "\"\n",
			`Cargo.lock:2: package serde@1.0.197: checksum "` + strings.ToUpper(regSum) + `" is not 64 lowercase hex digits`},
		{"bad v1 checksum", pkg + reg() + "\n[metadata]\n\"checksum serde 1.0.197 (" + CratesIORegistry + ")\" = \"abc\"\n",
			`Cargo.lock:1: package serde@1.0.197: checksum "abc" is not 64 lowercase hex digits`},
		{"bad v1 key", pkg + "\n[metadata]\n\"checksum serde\" = \"abc\"\n",
			`Cargo.lock: [metadata] key "checksum serde" is not "checksum NAME VERSION (SOURCE)"`},
		{"duplicate", "version = 4\n" + pkg + reg() + "\n" + pkg + reg(),
			`Cargo.lock:7: package serde@1.0.197: duplicate entry (first at line 2)`},
		{"duplicate local", "version = 4\n" + pkg + pkg, `Cargo.lock:5: package serde@1.0.197: duplicate entry (first at line 2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse("Cargo.lock", []byte(tt.lock))
			if err == nil {
				t.Fatalf("no error, got %+v", l)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got  %s\n want %s", err, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != "Cargo.lock" {
				t.Errorf("error %#v is not an *Error naming Cargo.lock", err)
			}
		})
	}
}

func reg() string { return "source = \"" + CratesIORegistry + "\"\n" }

func TestParseSource(t *testing.T) {
	const repo = "https://github.com/o/r.git"
	tests := []struct {
		raw     string
		version int
		want    Source
	}{
		{"", 4, Source{}},
		{CratesIORegistry, 4, Source{Kind: Registry, URL: "https://github.com/rust-lang/crates.io-index"}},
		{CratesIOSparse, 3, Source{Kind: Sparse, URL: "https://index.crates.io/"}},
		{"git+" + repo + "#" + sha, 4, Source{Kind: Git, URL: repo, Commit: sha}},
		{"git+" + repo + "?rev=v1#" + sha, 4, Source{Kind: Git, URL: repo, Ref: GitRef{"rev", "v1"}, Commit: sha}},
		{"git+" + repo + "?tag=v1.0%2Brc#" + sha, 4, Source{Kind: Git, URL: repo, Ref: GitRef{"tag", "v1.0+rc"}, Commit: sha}},
		{"git+" + repo + "?branch=feature%2Fx#" + sha, 4, Source{Kind: Git, URL: repo, Ref: GitRef{"branch", "feature/x"}, Commit: sha}},
		{"git+" + repo + "?branch=a+b#" + sha, 4, Source{Kind: Git, URL: repo, Ref: GitRef{"branch", "a b"}, Commit: sha}},
		{"git+" + repo + "?branch=a+b#" + sha, 3, Source{Kind: Git, URL: repo, Ref: GitRef{"branch", "a+b"}, Commit: sha}},
		{"git+" + repo + "?branch=feature%2Fx#" + sha, 3, Source{Kind: Git, URL: repo, Ref: GitRef{"branch", "feature%2Fx"}, Commit: sha}},
		{"git+" + repo + "?branch=feature/x#" + sha, 2, Source{Kind: Git, URL: repo, Ref: GitRef{"branch", "feature/x"}, Commit: sha}},
		// Malformed escapes stay, as Rust's url crate leaves them.
		{"git+" + repo + "?branch=100%+x%2#" + sha, 4, Source{Kind: Git, URL: repo, Ref: GitRef{"branch", "100% x%2"}, Commit: sha}},
		{"git+" + repo + "?branch=%E2%9C%93%ff#" + sha, 4, Source{Kind: Git, URL: repo, Ref: GitRef{"branch", "✓\uFFFD"}, Commit: sha}},
		// The greedy value takes everything up to the last '#', as nixpkgs' regex does.
		{"git+" + repo + "?branch=a#b#" + sha, 4, Source{Kind: Git, URL: repo, Ref: GitRef{"branch", "a#b"}, Commit: sha}},
		{"git+" + repo + "?rev=x&y=z#" + sha, 4, Source{Kind: Git, URL: repo, Ref: GitRef{"rev", "x&y=z"}, Commit: sha}},
		{"git+ssh://git@host/r#" + strings.Repeat("ab", 32), 4, Source{Kind: Git, URL: "ssh://git@host/r", Commit: strings.Repeat("ab", 32)}},
	}
	for _, tt := range tests {
		got, err := ParseSourceVersion(tt.raw, tt.version)
		tt.want.Raw = tt.raw
		if err != nil || got != tt.want {
			t.Errorf("ParseSourceVersion(%q, %d) = %+v, %v; want %+v", tt.raw, tt.version, got, err, tt.want)
		}
		if tt.version == 4 {
			if got, err := ParseSource(tt.raw); err != nil || got != tt.want {
				t.Errorf("ParseSource(%q) = %+v, %v; want %+v", tt.raw, got, err, tt.want)
			}
		}
	}

	for _, raw := range []string{
		"registry+", "sparse+", "path+file:///x", "directory+file:///x", "local-registry+file:///x",
		"crates-io", "https://github.com/o/r", "git+" + repo, "git+" + repo + "#", "git+" + repo + "#" + strings.ToUpper(sha),
		"git+" + repo + "#" + sha + "0", "git+" + repo + "?foo=bar#" + sha, "git+#" + sha, "git+" + repo + "#" + sha + "\n",
	} {
		if s, err := ParseSource(raw); err == nil {
			t.Errorf("ParseSource(%q) = %+v, want an error", raw, s)
		} else if !strings.Contains(err.Error(), "source ") {
			t.Errorf("ParseSource(%q) error %q does not name the source", raw, err)
		}
	}
}

func TestIsCratesIO(t *testing.T) {
	for raw, want := range map[string]bool{CratesIORegistry: true, CratesIOSparse: true, sparse: false, "": false} {
		s, err := ParseSource(raw)
		if err != nil {
			t.Fatal(err)
		}
		if s.IsCratesIO() != want {
			t.Errorf("%q: IsCratesIO = %v", raw, !want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("testdata/v4.lock")
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "Cargo.lock")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{dir, file} {
		l, err := Load(arg)
		if err != nil {
			t.Fatal(err)
		}
		if l.Path != file || string(l.Data) != string(data) || l.Name != file || len(l.Packages) != 9 || l.Mode != 0o644 {
			t.Errorf("Load(%q) = %d packages, %d bytes, %q, mode %v", arg, len(l.Packages), len(l.Data), l.Path, l.Mode)
		}
	}

	empty := t.TempDir()
	_, err = Load(empty)
	want := filepath.Join(empty, "Cargo.lock") + ": no such file or directory"
	var le *Error
	if err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &le) || le.File != filepath.Join(empty, "Cargo.lock") {
		t.Errorf("Load(empty dir) = %v; want %q wrapping fs.ErrNotExist", err, want)
	}

	// The mode is what Nix keeps: executable or not.
	for perm, want := range map[fs.FileMode]fs.FileMode{0o600: 0o644, 0o664: 0o644, 0o700: 0o755, 0o744: 0o755} {
		if err := os.Chmod(file, perm); err != nil {
			t.Fatal(err)
		}
		l, err := Load(file)
		if err != nil {
			t.Fatal(err)
		}
		if l.Mode != want {
			t.Errorf("Load of a %v file: mode %v, want %v", perm, l.Mode, want)
		}
	}

	// A project without its lock: the Cargo.toml given, or its directory.
	proj := t.TempDir()
	manifest := filepath.Join(proj, "Cargo.toml")
	if err := os.WriteFile(manifest, []byte("[package]\nname = \"demo\"\nversion = \"0.1.0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(manifest); !errors.Is(err, ErrManifest) || !strings.HasPrefix(err.Error(), manifest+":1: ") {
		t.Errorf("Load(Cargo.toml) = %v, want ErrManifest naming %s:1", err, manifest)
	}
	_, err = Load(proj)
	want = filepath.Join(proj, "Cargo.lock") + ": no such file or directory: the directory holds a Cargo.toml but no lock; make it with `cargo generate-lockfile` there"
	if err == nil || err.Error() != want || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(project without lock) = %v; want %q wrapping fs.ErrNotExist", err, want)
	}

	bad := filepath.Join(dir, "bad.lock")
	if err := os.WriteFile(bad, []byte("version = 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":1: ") {
		t.Errorf("Load(bad) = %v, want an error naming %s:1", err, bad)
	}
}

func TestErrorRendering(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "Cargo.lock", Line: 12, Package: "serde@1.0.197", Err: base}, "Cargo.lock:12: package serde@1.0.197: boom"},
		{Error{File: "Cargo.lock", Package: "serde@1.0.197", Err: base}, "Cargo.lock: package serde@1.0.197: boom"},
		{Error{File: "Cargo.lock", Line: 3, Err: base}, "Cargo.lock:3: boom"},
		{Error{Line: 3, Err: base}, "line 3: boom"},
		{Error{Package: "serde@1.0.197", Err: base}, "package serde@1.0.197: boom"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
		if !errors.Is(&tt.e, base) {
			t.Errorf("%q does not unwrap", tt.want)
		}
	}
}

func TestIsCommitID(t *testing.T) {
	sha1 := strings.Repeat("a1", 20)
	for c, want := range map[string]bool{
		sha1: true, strings.Repeat("0f", 32): true,
		sha1[:7]: false, sha1[:39]: false, strings.ToUpper(sha1): false, sha1 + "0": false,
		"main": false, "": false, "../" + sha1[:37]: false, "-" + sha1[:39]: false,
	} {
		if got := IsCommitID(c); got != want {
			t.Errorf("IsCommitID(%q) = %v, want %v", c, got, want)
		}
	}
}
