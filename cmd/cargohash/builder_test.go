package main

import (
	"bytes"
	"debug/elf"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

func TestGitJobs(t *testing.T) {
	tests := []struct {
		env  string
		want int
	}{
		{"", 0},
		{"3", 3},
		{"1", 1},
		{"0", runtime.NumCPU()},
		{"-2", 0},
		{"many", 0},
	}
	for _, tt := range tests {
		getenv := func(k string) string {
			if k == "NIX_BUILD_CORES" {
				return tt.env
			}
			return ""
		}
		if got := gitJobs(getenv); got != tt.want {
			t.Errorf("NIX_BUILD_CORES=%q: git jobs %d, want %d", tt.env, got, tt.want)
		}
	}
}

func TestInNixBuilder(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{"HOME": "/root", "TERM": "xterm-256color"}, false},
		{map[string]string{"HOME": "/homeless-shelter", "TERM": "xterm-256color", "NIX_LOG_FD": "2"}, true},
		{map[string]string{"HOME": "/homeless-shelter"}, true},
		{map[string]string{"NIX_LOG_FD": "2"}, true},
	}
	for _, tt := range tests {
		if got := inNixBuilder(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("inNixBuilder with %v = %v, want %v", tt.env, got, tt.want)
		}
	}
}

// TestStagingOutExists: as a builder, staging refuses an $out that exists
// (Nix removes it first; anything there is a mistake) before fetching.
func TestStagingOutExists(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "Cargo.lock")
	os.WriteFile(lock, fetchtest.Lock(lockfile.Package{Name: "local", Version: "0.1.0"}), 0o644)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	t.Setenv("out", out)
	_, errOut, code := runCLI(t, "staging", lock)
	if code != exitInput || !strings.Contains(errOut, out+" already exists") {
		t.Errorf("staging with an existing $out: exit %d, stderr %q; want exit 2 naming %s", code, errOut, out)
	}
}

// TestNixBuilder runs cargohash as the builder of real Nix derivations
// against a loopback world (a TLS registry and a TLS git server): the
// fixed-output staging derivation with the fake hash reports the hash that
// `cargohash prefetch` prints, with that hash it builds (again after a
// delete, and under --check) to a path whose `nix hash path` is it, and
// nix/fetch-cargo-vendor.nix gives a vendor tree cargo builds from offline.
// It needs root (a single-user Nix store in /nix/store, build users
// nixbld*, no sandbox: the builders reach 127.0.0.1) and nix-build; store
// paths it makes are named cargohash-buildertest-* and deleted afterwards.
func TestNixBuilder(t *testing.T) {
	nt := newNixTest(t)
	nixBuild, nixStore, nix, feat, base, pkg := nt.nixBuild, nt.nixStore, nt.nix, nt.feat, nt.base, nt.pkg
	gitPath := reftest.Need(t, "git")
	cargo := reftest.Need(t, "cargo")

	w := newNixWorld(t, base, gitPath)

	// The Nix side: every input comes into the store by builtins.path.
	expr := filepath.Join(base, "test.nix")
	dropin, err := filepath.Abs("../../nix/fetch-cargo-vendor.nix")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(expr, []byte(fmt.Sprintf(testNix, pkg, w.gitPkg, w.certPkg, w.src, dropin)), 0o644)
	env := nixEnv()

	build := func(attr, lock, hash string, extra ...string) (string, string, error) {
		// Explicit options, whatever the machine's nix.conf says (Debian's
		// nix-setup-systemd writes sandbox = false; without it Nix's
		// default is the sandbox, where the test's git, a symlink to the
		// machine's, does not resolve).
		args := append([]string{expr, "-A", attr, "--no-out-link", "--option", "substituters", "",
			"--option", "sandbox", "false",
			"--argstr", "lock", lock, "--argstr", "dl", w.dl, "--argstr", "hash", hash}, extra...)
		cmd := exec.Command(nixBuild, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		t.Logf("nix-build -A %s (%s) %s: %v", attr, lock, strings.Join(extra, " "), time.Since(start).Round(time.Millisecond))
		return strings.TrimSpace(stdout.String()), stderr.String(), err
	}

	for _, lock := range []string{"registry", "git"} {
		t.Run(lock, func(t *testing.T) {
			// The oracle of the hash Nix must get: prefetch on the same lock.
			t.Setenv("NIX_SSL_CERT_FILE", w.certFile)
			t.Setenv("NIX_GIT_SSL_CAINFO", "") // git's CA bundle comes from these first
			t.Setenv("GIT_SSL_CAINFO", "")
			out, errOut, code := runCLI(t, "prefetch", "--no-cache", "--registry-dl", "crates-io="+w.dl, filepath.Join(w.src, lock))
			if code != 0 {
				t.Fatalf("prefetch: exit %d\n%s", code, errOut)
			}
			want := strings.TrimSpace(out)

			// 1. lib.fakeHash: Nix builds, fails, and names the hash it got.
			_, errOut, err := build("raw", lock, fakeHash)
			if err == nil {
				t.Fatalf("nix-build with the fake hash succeeded")
			}
			m := gotLine.FindStringSubmatch(errOut)
			if m == nil {
				t.Fatalf("no `got:` line in nix-build's error:\n%s", errOut)
			}
			if m[1] != want {
				t.Errorf("Nix got %s, cargohash prefetch says %s\n%s", m[1], want, errOut)
			}
			// No TTY in a builder: plain progress lines, no carriage returns.
			if !strings.Contains(errOut, "fetched ") || !strings.Contains(errOut, "[1/") || strings.Contains(errOut, "\r") {
				t.Errorf("builder log without plain progress lines:\n%q", errOut)
			}

			// 2. The right hash: the build succeeds and the output hashes to
			// it. (Nix 2.8 already kept the output of step 1 under this
			// path, so nothing need run here; steps 3 and 4 run the builder.)
			path, errOut, err := build("raw", lock, want)
			if err != nil {
				t.Fatalf("nix-build with hash %s: %v\n%s", want, err, errOut)
			}
			checkStaging(t, path, filepath.Join(w.src, lock, "Cargo.lock"), lock == "git")

			// 3. --check: the builder runs again and Nix compares its output
			// with the stored one.
			if _, errOut, err := build("raw", lock, want, "--check"); err != nil || !strings.Contains(errOut, "checking outputs of") {
				t.Errorf("nix-build --check: %v\n%s", err, errOut)
			}

			// 4. From scratch, after deleting the output.
			reftest.Run(t, nixStore, "--delete", path)
			again, errOut, err := build("raw", lock, want)
			if err != nil || again != path || !strings.Contains(errOut, "building '") {
				t.Errorf("rebuild after nix-store --delete: %v, path %q (want %q)\n%s", err, again, path, errOut)
			}
			if got := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", path)...))); got != want {
				t.Errorf("nix hash path %s = %s, want %s", path, got, want)
			}
			if _, err := os.Stat("/homeless-shelter"); err == nil {
				t.Errorf("/homeless-shelter exists after the builds")
			}

			// 4. The drop-in: same hash, then the vendor tree, which cargo
			// builds from offline.
			_, errOut, err = build("dropin", lock, fakeHash)
			if m := gotLine.FindStringSubmatch(errOut); err == nil || m == nil || m[1] != want {
				t.Fatalf("fetch-cargo-vendor.nix with the fake hash: %v, want got: %s\n%s", err, want, errOut)
			}
			vendor, errOut, err := build("dropin", lock, want)
			if err != nil {
				t.Fatalf("fetch-cargo-vendor.nix: %v\n%s", err, errOut)
			}
			staging, _, err := build("dropin.vendorStaging", lock, want)
			if err != nil || !strings.HasSuffix(staging, "-cargohash-buildertest-vendor-staging") {
				t.Errorf("dropin.vendorStaging: %v, %q", err, staging)
			}
			if got := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", staging)...))); got != want {
				t.Errorf("drop-in staging hashes to %s, want %s", got, want)
			}
			cargoBuild(t, cargo, filepath.Join(w.src, lock), vendor, filepath.Join(base, "cargo-"+lock), map[string]string{"registry": "21", "git": "301"}[lock])
		})
	}
}

const fakeHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

// gotLine finds the hash in Nix's report (2.8: `got:    sha256-…`).
var gotLine = regexp.MustCompile(`got:\s+(sha256-[A-Za-z0-9+/]{43}=)`)

// testNix is the test's expression: the raw fixed-output derivation of
// SPEC §9 and the drop-in, from the static binary (%[1]s/bin/cargohash), a
// git (%[2]s/bin/git), the test CA (%[3]s/etc/ssl/certs/ca-bundle.crt), the
// source with one project per lock (%[4]s/LOCK) and the drop-in (%[5]s).
const testNix = `{ hash, lock, dl }:
let
  cargohash = builtins.path { path = %[1]q; name = "cargohash-buildertest-bin"; };
  git = builtins.path { path = %[2]q; name = "cargohash-buildertest-git"; };
  cacert = builtins.path { path = %[3]q; name = "cargohash-buildertest-cacert"; };
  src = builtins.path { path = %[4]q; name = "cargohash-buildertest-src"; };
in
{
  raw = derivation {
    name = "cargohash-buildertest-raw-vendor-staging";
    system = builtins.currentSystem;
    builder = "${cargohash}/bin/cargohash";
    args = [ "staging" "${src}/${lock}/Cargo.lock" "--registry-dl" "crates-io=${dl}" ];
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = hash;
    PATH = "${git}/bin";
    NIX_SSL_CERT_FILE = "${cacert}/etc/ssl/certs/ca-bundle.crt";
  };
  dropin = import %[5]q { inherit cargohash git cacert; } {
    name = "cargohash-buildertest";
    inherit src hash;
    cargoRoot = lock;
    cargohashFlags = [ "--registry-dl" "crates-io=${dl}" ];
  };
}
`

// nixEnv is the environment of nix-build: no proxies or CA file of the
// caller leak into the builders through impureEnvVars.
func nixEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy", "nix_ssl_cert_file", "ssl_cert_file", "nix_remote":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// lockStore makes concurrent runs of this test (go test ./... in two work
// trees) take turns: each deletes the store paths the other makes. The lock
// is released with the process or by t.Cleanup.
func lockStore(t *testing.T) {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "cargohash-buildertest.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	deadline := time.Now().Add(15 * time.Minute)
	for syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("another run of TestNixBuilder holds %s for more than 15 minutes", f.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deleteTestPaths deletes the store paths named cargohash-buildertest-*
// (and their lock files), left by this test or an interrupted run.
func deleteTestPaths(t *testing.T, nixStore string) {
	entries, err := os.ReadDir("/nix/store")
	if err != nil {
		return
	}
	var paths, locks []string
	for _, e := range entries {
		if !strings.Contains(e.Name(), "-cargohash-buildertest") {
			continue
		}
		p := filepath.Join("/nix/store", e.Name())
		if strings.HasSuffix(p, ".lock") {
			locks = append(locks, p)
		} else {
			paths = append(paths, p)
		}
	}
	if len(paths) > 0 {
		out, err := exec.Command(nixStore, append([]string{"--delete"}, paths...)...).CombinedOutput()
		if err != nil {
			t.Errorf("nix-store --delete of the test's paths: %v\n%s", err, out)
		}
	}
	for _, l := range locks {
		os.Remove(l)
	}
}

// buildStatic builds cmd/cargohash with CGO_ENABLED=0 into dir/bin and
// checks that the binary needs no dynamic loader.
// goTool is the go command that runs this test (go test puts its GOROOT's
// bin first on PATH), else the one on PATH.
func goTool(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "bin", "go")
}

func buildStatic(t *testing.T, goTool, dir string) string {
	exe := filepath.Join(dir, "bin", "cargohash")
	cmd := exec.Command(goTool, "build", "-trimpath", "-ldflags=-s -w", "-o", exe, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("%s is dynamically linked (%v)", exe, p.Type)
		}
	}
	return dir
}

// nixWorld is what the builders fetch from: a crates.io stand-in and a git
// server, both behind TLS on 127.0.0.1, and a source tree with two
// projects, registry/ (two crates) and git/ (a crate and a git crate).
type nixWorld struct {
	dl       string // the crates-io dl override
	certFile string // the servers' certificate, PEM
	certPkg  string // …as DIR/etc/ssl/certs/ca-bundle.crt
	gitPkg   string // DIR/bin/git → the machine's git
	src      string
}

func newNixWorld(t *testing.T, base, gitPath string) *nixWorld {
	w := &nixWorld{src: filepath.Join(base, "src"), certPkg: filepath.Join(base, "cacert"), gitPkg: filepath.Join(base, "gitpkg")}

	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	regURL, _ := url.Parse(reg.URL)
	regTLS := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(regURL))
	t.Cleanup(regTLS.Close)
	w.dl = regTLS.URL + "/api/v1/crates"
	alphaData := fetchtest.Crate("alpha", "1.0.0", map[string]string{"src/lib.rs": "pub fn alpha() -> u32 { 1 }\n"})
	betaData := fetchtest.Crate("beta", "0.2.0", map[string]string{"src/lib.rs": "pub fn beta() -> u32 { 20 }\n"})
	reg.Add("alpha", "1.0.0", alphaData)
	reg.Add("beta", "0.2.0", betaData)
	alpha := fetchtest.CratesIO("alpha", "1.0.0", alphaData)
	beta := fetchtest.CratesIO("beta", "0.2.0", betaData)

	certs := filepath.Join(w.certPkg, "etc", "ssl", "certs")
	os.MkdirAll(certs, 0o755)
	w.certFile = filepath.Join(certs, "ca-bundle.crt")
	os.WriteFile(w.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: regTLS.Certificate().Raw}), 0o644)
	os.MkdirAll(filepath.Join(w.gitPkg, "bin"), 0o755)
	if err := os.Symlink(gitPath, filepath.Join(w.gitPkg, "bin", "git")); err != nil {
		t.Fatal(err)
	}

	gitURL, commit := serveGitCrate(t, base, gitPath)
	gitdep := lockfile.Package{Name: "gitdep", Version: "0.1.0", Source: lockfile.Source{Raw: "git+" + gitURL + "?rev=" + commit + "#" + commit}}

	project := func(dir string, deps map[string]string, pkgs ...lockfile.Package) {
		var names, toml, calls []string
		for _, p := range pkgs {
			names = append(names, p.Name)
			calls = append(calls, p.Name+"::"+deps[p.Name]+"()")
		}
		for _, p := range pkgs {
			if strings.HasPrefix(p.Source.Raw, "git+") {
				toml = append(toml, fmt.Sprintf("%s = { git = %q, rev = %q }", p.Name, gitURL, commit))
			} else {
				toml = append(toml, fmt.Sprintf("%s = %q", p.Name, p.Version))
			}
		}
		root := lockfile.Package{Name: "demo", Version: "0.1.0", Dependencies: names}
		all := append([]lockfile.Package{root}, pkgs...)
		writeTree(t, filepath.Join(w.src, dir), map[string]string{
			"Cargo.toml":  "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n" + strings.Join(toml, "\n") + "\n",
			"src/main.rs": "fn main() {\n    println!(\"{}\", " + strings.Join(calls, " + ") + ");\n}\n",
			"Cargo.lock":  string(fetchtest.Lock(sortPackages(all)...)),
		})
	}
	funcs := map[string]string{"alpha": "alpha", "beta": "beta", "gitdep": "answer"}
	project("registry", funcs, alpha, beta)
	project("git", funcs, alpha, gitdep)
	return w
}

// serveGitCrate makes a repository holding the crate gitdep 0.1.0 and
// serves it with git http-backend over TLS; it returns the URL and commit.
func serveGitCrate(t *testing.T, base, gitPath string) (string, string) {
	work := filepath.Join(base, "gitwork")
	writeTree(t, work, map[string]string{
		"Cargo.toml": "[package]\nname = \"gitdep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"src/lib.rs": "pub fn answer() -> u32 { 300 }\n",
	})
	home := filepath.Join(base, "githome")
	os.MkdirAll(home, 0o755)
	env := append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_AUTHOR_DATE=2024-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z")
	git := func(dir string, args ...string) string {
		cmd := exec.Command(gitPath, args...)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git(work, "init", "--quiet", "--initial-branch=main")
	git(work, "add", ".")
	git(work, "commit", "--quiet", "-m", "gitdep")
	commit := git(work, "rev-parse", "HEAD")
	root := filepath.Join(base, "served")
	git(base, "clone", "--quiet", "--bare", work, filepath.Join(root, "gitdep.git"))

	execPath := git(base, "--exec-path")
	h := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "HOME=" + home,
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"},
		Stderr: io.Discard,
	}
	srv := httptest.NewTLSServer(http.TimeoutHandler(h, 30*time.Second, "timeout"))
	t.Cleanup(srv.Close)
	return srv.URL + "/gitdep.git", commit
}

// sortPackages orders a lock's packages by name, as cargo writes them.
func sortPackages(pkgs []lockfile.Package) []lockfile.Package {
	out := append([]lockfile.Package(nil), pkgs...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].Name < out[i].Name {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkStaging compares the built staging tree's top level with SPEC §3.
func checkStaging(t *testing.T, out, lock string, withGit bool) {
	want, _ := os.ReadFile(lock)
	if got, err := os.ReadFile(filepath.Join(out, "Cargo.lock")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s/Cargo.lock is not the input lock (%v)", out, err)
	}
	var names []string
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		names = append(names, e.Name())
	}
	wantNames := "Cargo.lock tarballs"
	if withGit {
		wantNames = "Cargo.lock git tarballs"
	}
	if strings.Join(names, " ") != wantNames {
		t.Errorf("%s holds %v, want %s", out, names, wantNames)
	}
}

// cargoBuild builds the project in srcDir with `cargo build --offline
// --locked` from the vendor tree alone (an empty CARGO_HOME), with @vendor@
// substituted as nixpkgs' cargoSetupHook does, and runs it.
func cargoBuild(t *testing.T, cargo, srcDir, vendor, work, want string) {
	config, err := os.ReadFile(filepath.Join(vendor, ".cargo", "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(config, []byte("@vendor@")) {
		t.Errorf("%s/.cargo/config.toml has no @vendor@ placeholder:\n%s", vendor, config)
	}
	project := filepath.Join(work, "project")
	if err := os.CopyFS(project, os.DirFS(srcDir)); err != nil {
		t.Fatal(err)
	}
	writeTree(t, project, map[string]string{".cargo/config.toml": strings.ReplaceAll(string(config), "@vendor@", vendor)})
	home := filepath.Join(work, "cargo-home")
	os.MkdirAll(home, 0o755)
	cmd := exec.Command(cargo, "build", "--offline", "--locked", "--quiet")
	cmd.Dir = project
	cmd.Env = append(os.Environ(), "CARGO_HOME="+home, "CARGO_TARGET_DIR="+filepath.Join(work, "target"), "CARGO_TERM_COLOR=never")
	if _, err := os.Stat(filepath.Join(os.Getenv("HOME"), ".rustup")); err == nil {
		cmd.Env = append(cmd.Env, "RUSTUP_HOME="+filepath.Join(os.Getenv("HOME"), ".rustup"))
	}
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cargo build --offline from %s: %v\n%s", vendor, err, out)
	}
	t.Logf("cargo build --offline: %v", time.Since(start).Round(time.Millisecond))
	out, err := exec.Command(filepath.Join(work, "target", "debug", "demo")).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("demo printed %q, want %q", got, want)
	}
}

// nixTest is what a test that runs nix-build needs: the tools, its turn at
// the store (the test's store paths deleted before and after), a work
// directory and the static cargohash in base/pkg/bin.
type nixTest struct {
	nixBuild, nixStore, nix string
	feat                    []string // nix's experimental-features flags
	base, pkg               string
}

func newNixTest(t *testing.T) *nixTest {
	if os.Geteuid() != 0 {
		reftest.Missing(t, "%s needs root to build in /nix/store", t.Name())
	}
	nt := &nixTest{nixBuild: reftest.Need(t, "nix-build"), nixStore: reftest.Need(t, "nix-store")}
	nt.nix, nt.feat = reftest.Nix(t)
	lockStore(t)
	deleteTestPaths(t, nt.nixStore)
	t.Cleanup(func() { deleteTestPaths(t, nt.nixStore) })
	nt.base = t.TempDir()
	start := time.Now()
	nt.pkg = buildStatic(t, goTool(t), filepath.Join(nt.base, "pkg"))
	t.Logf("static build of cargohash: %v", time.Since(start).Round(time.Millisecond))
	return nt
}
