package vendortree

import (
	"archive/tar"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// world is a Rust project whose dependencies come from a local registry
// (crates built by the test, two of them from Debian's librust-*-dev
// sources) and a git repository holding a workspace that uses workspace
// inheritance, with its Cargo.lock made by real cargo and a fetchCargoVendor
// staging directory for it.
type world struct {
	cargo     string
	project   string   // the project (Cargo.toml, Cargo.lock, src/)
	staging   string   // staging dir for the project's lock
	cargoEnv  []string // CARGO_HOME whose config replaces crates-io with the local registry
	bareEnv   []string // an empty CARGO_HOME: nothing but the vendor dir to build from
	gitSHA    string
	regCrates []string // NAME-VERSION of the registry crates
}

var gitEnv = []string{
	"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
	"GIT_AUTHOR_DATE=2020-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z",
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
}

const debianRegistry = "/usr/share/cargo/registry"

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{cargo: reftest.Need(t, "cargo")}
	git := reftest.Need(t, "git")
	for _, d := range []string{"memchr-2.5.0", "aho-corasick-0.7.19"} {
		if _, err := os.Stat(filepath.Join(debianRegistry, d, "Cargo.toml")); err != nil {
			reftest.Missing(t, "%s missing: apt-get install librust-memchr-dev librust-aho-corasick-dev", d)
		}
	}
	base := t.TempDir()
	reg := filepath.Join(base, "registry")
	w.staging = filepath.Join(base, "staging")
	crates := map[string][]byte{}
	addCrate := func(name, version string, crate []byte, manifest []byte) {
		nv := name + "-" + version
		crates[nv] = crate
		w.regCrates = append(w.regCrates, nv)
		mustWrite(t, filepath.Join(reg, nv+".crate"), crate, 0o644)
		ip := filepath.Join(reg, "index", filepath.FromSlash(fetchtest.IndexFile(name)))
		old, _ := os.ReadFile(ip)
		mustWrite(t, ip, append(old, indexLine(t, name, version, manifest, crate)...), 0o644)
	}
	for _, nv := range []string{"memchr-2.5.0", "aho-corasick-0.7.19"} {
		dir := filepath.Join(debianRegistry, nv)
		man, err := os.ReadFile(filepath.Join(dir, "Cargo.toml"))
		if err != nil {
			t.Fatal(err)
		}
		i := strings.LastIndex(nv, "-")
		addCrate(nv[:i], nv[i+1:], crateFromDir(t, dir, nv), man)
	}
	// A crate with every file name and kind the cargo layout treats
	// specially, to compare with cargo vendor.
	oddMan := "[package]\nname = \"oddfiles\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"
	odd := "oddfiles-0.1.0/"
	addCrate("oddfiles", "0.1.0", fetchtest.TarGz([]fetchtest.Entry{
		fetchtest.FileEntry(odd+"Cargo.toml", oddMan),
		fetchtest.FileEntry(odd+"Cargo.toml.orig", "# original\n"+oddMan),
		fetchtest.FileEntry(odd+".cargo_vcs_info.json", "{\n  \"git\": {\n    \"sha1\": \"0000000000000000000000000000000000000000\"\n  },\n  \"path_in_vcs\": \"\"\n}"),
		fetchtest.FileEntry(odd+".gitignore", "/target\n"),
		fetchtest.FileEntry(odd+".gitattributes", "* text=auto\n"),
		fetchtest.FileEntry(odd+"sub/.gitignore", "x\n"),
		fetchtest.FileEntry(odd+"sub/.GITIGNORE", "case matters\n"),
		fetchtest.FileEntry(odd+"sub/keep.txt", "kept\n"),
		fetchtest.FileEntry(odd+"fix.rej", "rejected hunk\n"),
		fetchtest.FileEntry(odd+".cargo-ok", `{"v":1}`),
		fetchtest.FileEntry(odd+"sub/.cargo-ok", "nested\n"),
		fetchtest.FileEntry(odd+".git/config", "[core]\n"),
		fetchtest.FileEntry(odd+"sub/.git", "gitdir: elsewhere\n"),
		fetchtest.FileEntry(odd+"src/lib.rs", "pub fn odd() -> u32 { 7 }\n"),
		// A backslash would be written as '/' in the checksum key by cargo
		// vendor 1.95, whose tree then fails to build (see checksum.go).
		fetchtest.FileEntry(odd+"odd <&> \u2028 \x7f \"q\" \x01 \t.txt", "json escaping\n"),
		{Name: odd + "run.sh", Type: tar.TypeReg, Mode: 0o755, Body: "#!/bin/sh\necho hi\n"},
		{Name: odd + "empty/", Type: tar.TypeDir, Mode: 0o755},
		{Name: odd + "docs/run-link", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "../run.sh"},
	}), []byte(oddMan))
	for _, v := range []string{"0.1.0", "0.2.0"} {
		man := "[package]\nname = \"tinyver\"\nversion = \"" + v + "\"\nedition = \"2021\"\n"
		p := "tinyver-" + v + "/"
		addCrate("tinyver", v, fetchtest.TarGz([]fetchtest.Entry{
			fetchtest.FileEntry(p+"Cargo.toml", man),
			fetchtest.FileEntry(p+"src/lib.rs", "pub const V: &str = \""+v+"\";\n"),
		}), []byte(man))
	}
	mustWrite(t, filepath.Join(reg, "index", "config.json"), []byte(`{"dl":"file:///nonexistent","api":null}`), 0o644)

	// The git dependency: a workspace with inheritance, a path dependency
	// between members and symlinks of every kind.
	ws := filepath.Join(base, "wsrepo")
	mustWrite(t, filepath.Join(ws, "Cargo.toml"), []byte(`[workspace]
members = ["crates/*"]
resolver = "2"

[workspace.package]
version = "0.3.0"
edition = "2021"
license = "MIT"
readme = "README.md"

[workspace.dependencies]
memchr = { version = "2.5", default-features = false }
wshelper = { path = "crates/wshelper", version = "0.3.0" }
tinyver = "0.2"

[workspace.lints.rust]
unsafe_code = "forbid"
`), 0o644)
	mustWrite(t, filepath.Join(ws, "README.md"), []byte("workspace readme\n"), 0o644)
	mustWrite(t, filepath.Join(ws, "crates/wsmain/Cargo.toml"), []byte(`[package]
name = "wsmain"
version.workspace = true
edition.workspace = true
license = { workspace = true }
readme.workspace = true

[dependencies]
memchr = { workspace = true, features = ["std"] }
wshelper = { workspace = true }

[target.'cfg(unix)'.dependencies]
tinyver = { workspace = true, optional = true }

[features]
default = ["tinyver"]

[lints]
workspace = true
`), 0o644)
	mustWrite(t, filepath.Join(ws, "crates/wsmain/src/lib.rs"), []byte(`pub fn find(h: &[u8]) -> Option<usize> {
    memchr::memchr(wshelper::NEEDLE, h)
}
pub fn tv() -> &'static str { tinyver::V }
pub fn text() -> &'static str { include_str!("../linked.txt") }
`), 0o644)
	mustWrite(t, filepath.Join(ws, "shared/data.txt"), []byte("shared through a symlink\n"), 0o644)
	mustWrite(t, filepath.Join(ws, "crates/wshelper/Cargo.toml"), []byte(`[package]
name = "wshelper"
version.workspace = true
edition.workspace = true
`), 0o644)
	mustWrite(t, filepath.Join(ws, "crates/wshelper/src/lib.rs"), []byte("pub const NEEDLE: u8 = b'z';\n"), 0o644)
	for link, target := range map[string]string{
		"crates/wsmain/linked.txt": "../../shared/data.txt", // inside the checkout: copied as a file
		"crates/wsmain/alias.rs":   "src/lib.rs",
	} {
		if err := os.Symlink(target, filepath.Join(ws, link)); err != nil {
			t.Fatal(err)
		}
	}
	run(t, ws, gitEnv, git, "init", "-q", "-b", "main")
	run(t, ws, gitEnv, git, "add", "-A")
	run(t, ws, gitEnv, git, "commit", "-q", "-m", "ws")
	w.gitSHA = strings.TrimSpace(run(t, ws, gitEnv, git, "rev-parse", "HEAD"))

	w.project = filepath.Join(base, "project")
	mustWrite(t, filepath.Join(w.project, "Cargo.toml"), []byte(`[package]
name = "demo"
version = "0.1.0"
edition = "2021"

[dependencies]
memchr = "2.5"
aho-corasick = "0.7"
oddfiles = "0.1"
tinyver = "0.2"
tinyver01 = { package = "tinyver", version = "0.1" }
wsmain = { git = "file://`+ws+`", branch = "main" }
`), 0o644)
	mustWrite(t, filepath.Join(w.project, "src/main.rs"), []byte(`fn main() {
    let ac = aho_corasick::AhoCorasick::new(&["b"]);
    println!("{:?} {:?} {} {} {} {:?} {} {}", memchr::memchr(b'a', b"xa"), ac.find("ab").map(|m| m.start()),
        oddfiles::odd(), tinyver::V, tinyver01::V, wsmain::find(b"az"), wsmain::tv(), wsmain::text().trim());
}
`), 0o644)

	home := filepath.Join(base, "cargo-home")
	mustWrite(t, filepath.Join(home, "config.toml"), []byte(`[source.crates-io]
replace-with = "local"

[source.local]
local-registry = "`+reg+`"

[net]
git-fetch-with-cli = false
`), 0o644)
	path := "PATH=" + filepath.Dir(w.cargo) + string(os.PathListSeparator) + os.Getenv("PATH")
	w.cargoEnv = []string{"CARGO_HOME=" + home, path, "CARGO_TARGET_DIR=" + filepath.Join(base, "target"), "CARGO_TERM_COLOR=never"}
	bare := filepath.Join(base, "bare-home")
	if err := os.MkdirAll(bare, 0o755); err != nil {
		t.Fatal(err)
	}
	w.bareEnv = []string{"CARGO_HOME=" + bare, path, "CARGO_TARGET_DIR=" + filepath.Join(base, "target"), "CARGO_TERM_COLOR=never"}
	run(t, w.project, w.cargoEnv, w.cargo, "generate-lockfile")

	// Staging (SPEC §3): the lock, the .crate bytes, the checkout without .git.
	lockData, err := os.ReadFile(filepath.Join(w.project, "Cargo.lock"))
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(w.staging, "Cargo.lock"), lockData, 0o644)
	for nv, b := range crates {
		mustWrite(t, filepath.Join(w.staging, "tarballs", nv+".tar.gz"), b, 0o644)
	}
	gitOut := filepath.Join(w.staging, "git", w.gitSHA)
	if err := os.MkdirAll(filepath.Dir(gitOut), 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, base, nil, "cp", "-a", ws, gitOut)
	if err := os.RemoveAll(filepath.Join(gitOut, ".git")); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) lock(t *testing.T) *lockfile.Lockfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.staging, "Cargo.lock"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := lockfile.Parse("Cargo.lock", data)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// build copies the project, gives it config as .cargo/config.toml and runs
// `cargo build --offline --locked` with an empty CARGO_HOME.
func (w *world) build(t *testing.T, config string) string {
	t.Helper()
	proj := filepath.Join(t.TempDir(), "project")
	run(t, "/", nil, "cp", "-a", w.project, proj)
	mustWrite(t, filepath.Join(proj, ".cargo", "config.toml"), []byte(config), 0o644)
	run(t, proj, w.bareEnv, w.cargo, "build", "--offline", "--locked", "--quiet")
	return run(t, proj, w.bareEnv, w.cargo, "run", "--offline", "--locked", "--quiet")
}

const wantOutput = "Some(1) Some(1) 7 0.2.0 0.1.0 Some(1) 0.2.0 shared through a symlink\n"

func TestEndToEnd(t *testing.T) {
	w := newWorld(t)
	lock := w.lock(t)
	ctx := context.Background()

	t.Run("nixpkgs", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "vendor")
		if err := fromStaging(ctx, w.staging, out, Options{Layout: Nixpkgs, Absolute: true}); err != nil {
			t.Fatal(err)
		}
		config, err := os.ReadFile(filepath.Join(out, ".cargo", "config.toml"))
		if err != nil {
			t.Fatal(err)
		}
		if got := w.build(t, string(config)); got != wantOutput {
			t.Errorf("program printed %q, want %q", got, wantOutput)
		}
		// The placeholder form is the same file with @vendor@.
		out2 := filepath.Join(t.TempDir(), "vendor")
		if err := fromStaging(ctx, w.staging, out2, Options{}); err != nil {
			t.Fatal(err)
		}
		c2, _ := os.ReadFile(filepath.Join(out2, ".cargo", "config.toml"))
		if strings.ReplaceAll(string(c2), VendorPlaceholder, out) != string(config) {
			t.Errorf("placeholder config:\n%s\nabsolute config:\n%s", c2, config)
		}
		tree := readTree(t, out)
		for _, nv := range w.regCrates {
			sum := tree["source-registry/"+nv+"/.cargo-checksum.json"].Data
			if !strings.HasPrefix(sum, `{"files": {}, "package": "`) {
				t.Errorf("%s: checksum file %q", nv, sum)
			}
		}
		for _, nv := range []string{"wsmain-0.3.0", "wshelper-0.3.0"} {
			if got := tree["source-git-0/"+nv+"/.cargo-checksum.json"].Data; got != `{"files": {}}` {
				t.Errorf("%s: checksum file %q", nv, got)
			}
		}
		if e := tree["source-git-0/wsmain-0.3.0/linked.txt"]; !e.Mode.IsRegular() {
			t.Errorf("linked.txt not copied as a regular file: %v", e.Mode)
		}
	})

	t.Run("cargo", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "vendor")
		if err := fromStaging(ctx, w.staging, out, Options{Layout: Cargo}); err != nil {
			t.Fatal(err)
		}
		if got := w.build(t, CargoSourceConfig(lock, out)); got != wantOutput {
			t.Errorf("program printed %q, want %q", got, wantOutput)
		}

		// The oracle: real cargo vendor on the same registry.
		ref := filepath.Join(t.TempDir(), "ref-vendor")
		printed := run(t, w.project, w.cargoEnv, w.cargo, "vendor", "--respect-source-config", "--locked", ref)
		if want := CargoSourceConfig(lock, ref); printed != want {
			t.Errorf("printed config differs\ncargo vendor:\n%s\nCargoSourceConfig:\n%s", printed, want)
		}
		got, want := readTree(t, out), readTree(t, ref)
		gitDirs := []string{"wsmain/", "wshelper/"}
		isGit := func(p string) bool {
			for _, g := range gitDirs {
				if strings.HasPrefix(p, g) {
					return true
				}
			}
			return false
		}
		for p, we := range want {
			if isGit(p) {
				continue
			}
			ge, ok := got[p]
			switch {
			case !ok:
				t.Errorf("missing %s (%v)", p, we.Mode)
			case ge.Mode != we.Mode:
				t.Errorf("%s: mode %v, cargo vendor: %v", p, ge.Mode, we.Mode)
			case ge.Data != we.Data:
				t.Errorf("%s differs:\n got: %q\nwant: %q", p, ge.Data, we.Data)
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok && !isGit(p) {
				t.Errorf("extra %s", p)
			}
		}
		for _, g := range gitDirs {
			if _, ok := got[strings.TrimSuffix(g, "/")]; !ok {
				t.Errorf("git crate dir %s missing", g)
			}
		}
	})

	t.Run("cargo-versioned", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "vendor")
		if err := fromStaging(ctx, w.staging, out, Options{Layout: Cargo, VersionedDirs: true}); err != nil {
			t.Fatal(err)
		}
		ref := filepath.Join(t.TempDir(), "ref-vendor")
		run(t, w.project, w.cargoEnv, w.cargo, "vendor", "--respect-source-config", "--locked", "--versioned-dirs", ref)
		gotDirs, wantDirs := topDirs(t, out), topDirs(t, ref)
		if gotDirs != wantDirs {
			t.Errorf("directories %s, cargo vendor --versioned-dirs: %s", gotDirs, wantDirs)
		}
	})
}

func topDirs(t *testing.T, dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

var _ = exec.Command
