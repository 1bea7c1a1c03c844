package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// buildCommand builds cargohash once for the tests that run it as a
// process ("go test" puts its go first in PATH).
func buildCommand(t *testing.T) string {
	t.Helper()
	builtOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cargohash-bin-")
		if err != nil {
			builtErr = err
			return
		}
		built = filepath.Join(dir, "cargohash")
		if b, err := exec.Command("go", "build", "-o", built, ".").CombinedOutput(); err != nil {
			builtErr = fmt.Errorf("go build: %v\n%s", err, b)
		}
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return built
}

var (
	builtOnce sync.Once
	built     string
	builtErr  error
)

var update = flag.Bool("update", false, "regenerate docs/cargohash.1 from the command definitions")

// TestUsageErrors: a command line to correct is one line on stderr that
// names the problem and the fix, exit 2, and nothing on stdout.
func TestUsageErrors(t *testing.T) {
	dir, _, _ := registryLock(t)
	tmp := t.TempDir()
	empty := t.TempDir()
	manifest := filepath.Join(tmp, "Cargo.toml")
	os.WriteFile(manifest, []byte("[package]\nname = \"x\"\n"), 0o644)
	for _, tt := range []struct {
		args []string
		want string // the whole line, or a regexp when it starts with ^
	}{
		{[]string{"prefetch", "--bogus", "."}, "cargohash: prefetch: unknown flag --bogus; see 'cargohash prefetch --help'"},
		{[]string{"prefetch", dir, "--bogus"}, "cargohash: prefetch: unknown flag --bogus; see 'cargohash prefetch --help'"},
		{[]string{"prefetch", "-x"}, "cargohash: prefetch: unknown flag -x; see 'cargohash prefetch --help'"},
		{[]string{"prefetch", "--jobs", "many", dir}, `cargohash: prefetch: invalid value "many" for --jobs; see 'cargohash prefetch --help'`},
		{[]string{"prefetch", "--jobs"}, "cargohash: prefetch: --jobs needs a value; see 'cargohash prefetch --help'"},
		{[]string{"--bogus"}, "cargohash: unknown flag --bogus; see 'cargohash --help'"},
		{[]string{"bogus"}, `cargohash: unknown command "bogus"; see 'cargohash --help'`},
		{[]string{}, "cargohash: no command given; see 'cargohash --help'"},
		{[]string{"vendor", "--out", filepath.Join(tmp, "v"), "--layout", "debian", dir}, `cargohash: vendor: --layout "debian": want nixpkgs or cargo`},
		{[]string{"prefetch", "--registry-dl", "crates-io=mirror/{crate}", dir}, "^cargohash: --registry-dl crates-io=mirror/\\{crate\\}: mirror/\\{crate\\} is not a URL; a local mirror is file:///.*/mirror/\\{crate\\}$"},
		{[]string{"check", "--vendor", manifest}, "^cargohash: check: --vendor .*/Cargo.toml is a project file, not a vendor tree: give the vendor directory, staging directory or vendor tarball \\(and the project as --src .*\\)$"},
		{[]string{"prefetch", empty}, "^cargohash: no Cargo.lock in " + regexp.QuoteMeta(empty) + " or any directory above it; run 'cargo generate-lockfile' in the project to make one$"},
		{[]string{"tarball", "--out", tmp, dir}, "cargohash: tarball: --out " + tmp + " is a directory; --out names the file to write, e.g. --out " + filepath.Join(tmp, "vendor.tar.gz")},
		{[]string{"tarball", "--out", filepath.Join(tmp, "missing", "v.tar.gz"), dir}, "^cargohash: refusing to write .*/missing/v.tar.gz: its parent directory .*/missing does not exist; create it first$"},
		{[]string{"completion", "tcsh"}, `cargohash: completion: unknown shell "tcsh": want bash, zsh or fish`},
		{[]string{"prefetch", "--cache-dir", tmp, "--no-cache", dir}, "cargohash: --cache-dir and --no-cache: give one or the other"},
		{[]string{"vendor", "--out", filepath.Join(tmp, "v"), "--versioned-dirs", dir}, "cargohash: vendor: --versioned-dirs is for --layout cargo (the nixpkgs layout names every crate directory NAME-VERSION already)"},
		{[]string{"vendor", "--out", filepath.Join(tmp, "v"), "--layout", "cargo", "--absolute", dir}, "cargohash: vendor: --absolute is for the nixpkgs layout, whose .cargo/config.toml it changes"},
		{[]string{"tarball", "--out", filepath.Join(tmp, "v.tar"), "--name", "a/b", dir}, `cargohash: tarball: --name "a/b": the top directory's name, without a slash`},
	} {
		out, errOut, code := runCLI(t, tt.args...)
		line := strings.TrimSuffix(errOut, "\n")
		ok := line == tt.want
		if strings.HasPrefix(tt.want, "^") {
			ok = regexp.MustCompile(tt.want).MatchString(line)
		}
		if code != exitInput || out != "" || !ok || strings.Contains(line, "\n") {
			t.Errorf("cargohash %q: exit %d, stdout %q, stderr %q; want exit 2, no stdout, one line %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

// TestHelp: help is asked for, so it goes to stdout with exit 0; every flag
// that takes a value shows a placeholder that says what (never "value"),
// and no back-quote of urfave/cli's placeholder syntax is left over.
func TestHelp(t *testing.T) {
	app := newApp(nil, nil)
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "prefetch"}, {"prefetch", "--help"}, {"vendor", "-h"}} {
		out, errOut, code := runCLI(t, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "USAGE:") {
			t.Errorf("cargohash %q: exit %d, stderr %q, stdout %q", args, code, errOut, out)
		}
	}
	for _, cmd := range app.Commands {
		out, _, code := runCLI(t, "help", cmd.Name)
		if code != 0 || strings.Contains(out, "`") || regexp.MustCompile(`--\S+ value`).MatchString(out) {
			t.Errorf("help %s (exit %d) has a back-quote or a 'value' placeholder:\n%s", cmd.Name, code, out)
		}
	}
	out, _, _ := runCLI(t, "help", "vendor")
	for _, want := range []string{"--jobs N ", "--layout nixpkgs|cargo ", "--out DIR ", "--registry-dl SOURCE=DL "} {
		if !strings.Contains(out, want) {
			t.Errorf("vendor help lacks %q:\n%s", want, out)
		}
	}
	if out, _, _ := runCLI(t, "help", "tarball"); !strings.Contains(out, "--name NAME ") {
		t.Errorf("tarball help lacks --name NAME:\n%s", out)
	}
}

// TestManPage: docs/cargohash.1 is `cargohash man`, generated from the
// command definitions (-update rewrites it).
func TestManPage(t *testing.T) {
	out, errOut, code := runCLI(t, "man")
	if code != 0 || !strings.Contains(out, ".SH NAME") || !strings.Contains(out, "interrupted") {
		t.Fatalf("man: exit %d, %s\n%s", code, errOut, out)
	}
	const file = "../../docs/cargohash.1"
	if *update {
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	committed, err := os.ReadFile(file)
	if err != nil || string(committed) != out {
		t.Fatalf("%s is not what 'cargohash man' prints (%v); run go test ./cmd/cargohash -run ManPage -update", file, err)
	}
}

// TestCompletion: each script asks cargohash for the words to offer, and
// cargohash answers with its commands and a command's flags.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "complete -o bashdefault -o default -F _cargohash cargohash", "zsh": "#compdef cargohash", "fish": "complete -c cargohash"} {
		out, errOut, code := runCLI(t, "completion", shell)
		if code != 0 || errOut != "" || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, %s\n%s", shell, code, errOut, out)
		}
	}
	// urfave/cli completes from os.Args: ask the built command.
	bin := buildCommand(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--generate-bash-completion"}, "prefetch\n"},
		{[]string{"vendor", "--la", "--generate-bash-completion"}, "--layout\n"},
	} {
		out, err := exec.Command(bin, tc.args...).Output()
		if err != nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("cargohash %q = %q (%v), want %q in it", tc.args, out, err, tc.want)
		}
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		script, _, _ := runCLI(t, "completion", "bash")
		if b, err := exec.Command(bash, "-n", "-c", script).CombinedOutput(); err != nil {
			t.Errorf("bash -n: %v\n%s", err, b)
		}
	}
}

// crateLock serves n crates and writes a lock naming them, in the lock's
// order (by name).
func crateLock(t *testing.T, n int) (string, *fetchtest.Registry, []lockfile.Package) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	var pkgs []lockfile.Package
	for i := range n {
		pkgs = append(pkgs, reg.AddCrate(fmt.Sprintf("c%02d", i), "1.0.0", map[string]string{"src/lib.rs": fmt.Sprint("// ", i, "\n")}))
	}
	return writeProject(t, fetchtest.Lock(pkgs...)), reg, pkgs
}

// TestFailedCratesReportedOnce: crates that fail for a reason of their
// own (404, checksum mismatch) are all named, each once, in lock order;
// nothing about cancelled work or retries, no library log line; exit 3;
// empty stdout.
func TestFailedCratesReportedOnce(t *testing.T) {
	dir, _, pkgs := crateLock(t, 6)
	lock, _ := os.ReadFile(filepath.Join(dir, "Cargo.lock"))
	s := string(lock)
	s = strings.Replace(s, `name = "c01"`, `name = "gone1"`, 1)          // 404
	s = strings.Replace(s, pkgs[3].Checksum, strings.Repeat("0", 64), 1) // checksum
	s = strings.Replace(s, `name = "c05"`, `name = "gone5"`, 1)          // 404
	dir = writeProject(t, []byte(s))
	for _, quiet := range []bool{true, false} {
		args := fast(t, dir)
		if !quiet {
			args = args[:len(args)-2] // drop --quiet
			args = append(args, dir)
		}
		out, errOut, code := runCLI(t, append([]string{"prefetch"}, args...)...)
		if code != exitFetch || out != "" {
			t.Fatalf("exit %d, stdout %q, want 3 and nothing: %s", code, out, errOut)
		}
		var failures []string
		for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
			if strings.HasPrefix(l, "cargohash: ") {
				failures = append(failures, l)
			}
			if strings.Contains(l, "[ERR]") || strings.Contains(l, "context canceled") || strings.Contains(l, "[DEBUG]") || strings.HasPrefix(l, "fetch: ") {
				t.Errorf("stderr has a raw library line %q", l)
			}
		}
		want := []string{"cargohash: gone1@1.0.0: GET http://127.0.0.1", "cargohash: verifying c03@1.0.0: checksum mismatch", "cargohash: gone5@1.0.0: GET http://127.0.0.1"}
		if len(failures) != len(want) {
			t.Fatalf("quiet=%v: %d failure lines, want %d:\n%s", quiet, len(failures), len(want), errOut)
		}
		for i, w := range want {
			if !strings.HasPrefix(failures[i], w) {
				t.Errorf("failure %d = %q, want it to start with %q", i, failures[i], w)
			}
		}
		if strings.Count(errOut, "downloaded: "+pkgs[3].Checksum) != 1 || strings.Count(errOut, "Cargo.lock: "+strings.Repeat("0", 64)) != 1 {
			t.Errorf("the mismatch's expected and got are not said once each:\n%s", errOut)
		}
		if strings.Count(errOut, "404 Not Found") != 2 {
			t.Errorf("want two 404s:\n%s", errOut)
		}
	}
}

// TestOfflineListsEveryMissingCrate: offline with an empty cache, every
// missing crate is named, the list capped at maxReported with a count of
// the rest.
func TestOfflineListsEveryMissingCrate(t *testing.T) {
	for _, n := range []int{3, maxReported + 5} {
		dir, reg, _ := crateLock(t, n)
		dl := "--registry-dl=" + reg.Source().Raw + "=" + reg.DL()
		out, errOut, code := runCLI(t, append([]string{"prefetch", "--offline", dl}, fast(t, dir)...)...)
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		want := min(n, maxReported)
		if code != exitFetch || out != "" {
			t.Fatalf("%d crates: exit %d, stdout %q: %s", n, code, out, errOut)
		}
		for i := range want {
			if w := fmt.Sprintf("cargohash: c%02d@1.0.0: GET http://127.0.0.1:", i); !strings.HasPrefix(lines[i], w) || !strings.HasSuffix(lines[i], ": not in the cache and offline") {
				t.Errorf("line %d = %q, want %q…not in the cache and offline", i, lines[i], w)
			}
		}
		more := ""
		if n > maxReported {
			more = fmt.Sprintf("cargohash: and %d more crates failed", n-maxReported)
			want++
		}
		if len(lines) != want || more != "" && lines[len(lines)-1] != more {
			t.Errorf("%d crates: %d lines, want %d ending %q:\n%s", n, len(lines), want, more, errOut)
		}
	}
}

// TestInterrupted: a cancelled run (Ctrl-C) says only "interrupted" and
// exits 130, and leaves no output behind.
func TestInterrupted(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{Latency: time.Minute})
	var pkgs []lockfile.Package
	for _, n := range []string{"a", "b", "c"} {
		pkgs = append(pkgs, reg.AddCrate(n, "1.0.0", nil))
	}
	dir := writeProject(t, fetchtest.Lock(pkgs...))
	parent := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for range 3000 { // up to 30 s for the first request to arrive
			if reg.TotalRequests() > 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	var stdout, stderr bytes.Buffer
	code := run(ctx, append([]string{"cargohash", "staging", "--out", filepath.Join(parent, "out")}, fast(t, dir)...), &stdout, &stderr)
	if code != exitCanceled || stderr.String() != "cargohash: interrupted\n" || stdout.Len() != 0 {
		t.Fatalf("exit %d, stderr %q, stdout %q; want 130 and only 'cargohash: interrupted'", code, stderr.String(), stdout.String())
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// TestProgressLines: without a terminal, progress is plain lines, nothing
// before the input is validated, and a summary that says where the crates
// came from; --quiet leaves stderr empty.
func TestProgressLines(t *testing.T) {
	dir, _, _ := crateLock(t, 3)
	t.Setenv("CARGO_HOME", t.TempDir())
	cache := t.TempDir()
	args := []string{"prefetch", "--cache-dir", cache, "--retry-wait", "1ms", dir}
	for i, want := range []string{"): 3 downloaded\n", "): 3 from cache\n"} {
		out, errOut, code := runCLI(t, args...)
		if code != 0 || !strings.HasPrefix(out, "sha256-") {
			t.Fatalf("run %d: exit %d: %s", i, code, errOut)
		}
		lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(errOut, "[1/3] c0") || !strings.HasPrefix(last, "fetched 3 crates (") || !strings.HasSuffix(last+"\n", want) || strings.Contains(errOut, "\r") {
			t.Errorf("run %d: stderr %q, want [1/3] lines and a last line 'fetched 3 crates (…%s'", i, errOut, want)
		}
	}
	if _, errOut, code := runCLI(t, append(args[:1:1], append([]string{"--quiet"}, args[1:]...)...)...); code != 0 || errOut != "" {
		t.Errorf("--quiet: exit %d, stderr %q", code, errOut)
	}
	// A lock error: the error alone, no progress before it.
	lock, _ := os.ReadFile(filepath.Join(dir, "Cargo.lock"))
	bad := writeProject(t, regexp.MustCompile(`checksum = "[0-9a-f]+"\n`).ReplaceAll(lock, nil))
	_, errOut, code := runCLI(t, "prefetch", "--cache-dir", t.TempDir(), bad)
	if code != exitInput || strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, "fetched") {
		t.Errorf("a lock without checksums: exit %d, stderr %q; want exit 2 and the error alone", code, errOut)
	}
}

// TestLockDiscovery: from a workspace member (given, or the current
// directory) cargohash uses the workspace's Cargo.lock above it, as cargo
// does, and says so on stderr; from the directory of the lock it says
// nothing.
func TestLockDiscovery(t *testing.T) {
	root, _, _ := crateLock(t, 2)
	member := filepath.Join(root, "crates", "member")
	os.MkdirAll(member, 0o755)
	os.WriteFile(filepath.Join(member, "Cargo.toml"), []byte("[package]\nname = \"member\"\nversion = \"0.1.0\"\n"), 0o644)
	want, errOut, code := runCLI(t, append([]string{"prefetch"}, fast(t, root)...)...)
	if code != 0 || errOut != "" {
		t.Fatalf("from the root: exit %d, stderr %q", code, errOut)
	}
	using := "cargohash: using " + filepath.Join(root, "Cargo.lock") + "\n"
	got, errOut, code := runCLI(t, append([]string{"prefetch"}, fast(t, member)...)...)
	if code != 0 || got != want || errOut != using {
		t.Errorf("member given: exit %d, stdout %q, stderr %q; want %q and %q", code, got, errOut, want, using)
	}
	t.Chdir(member)
	got, errOut, code = runCLI(t, append([]string{"prefetch"}, fast(t)...)...)
	if code != 0 || got != want || errOut != using {
		t.Errorf("in the member: exit %d, stdout %q, stderr %q; want %q and %q", code, got, errOut, want, using)
	}
	if _, errOut, code := runCLI(t, append([]string{"check", "--hash", strings.TrimSpace(want)}, fast(t)...)...); code != 0 || errOut != using {
		t.Errorf("check --hash in the member: exit %d, stderr %q; want 0 and %q", code, errOut, using)
	}
}

// TestCargoVendorSnippet: `vendor --layout cargo` prints the [source]
// snippet byte for byte as real `cargo vendor` prints it for the same
// --out, relative or absolute. Cargo vendors the demo project offline from
// a copy of our own tree (a directory source), so both vendor the same
// crates from crates-io.
func TestCargoVendorSnippet(t *testing.T) {
	cargo := reftest.Need(t, "cargo")
	base := t.TempDir()
	proj := demoProject(t)
	demo := demoArgs(t)
	t.Chdir(base)
	for _, out := range []string{"vendor", filepath.Join(base, "abs", "vendor")} {
		os.MkdirAll(filepath.Join(base, "abs"), 0o755)
		ours, errOut, code := runCLI(t, append([]string{"vendor", "--layout", "cargo", "--out", out}, append(demo, proj)...)...)
		if code != 0 {
			t.Fatalf("vendor --out %s: exit %d: %s", out, code, errOut)
		}
		// Cargo reads the crates from our tree, moved aside, and writes its
		// own where ours was.
		src := filepath.Join(t.TempDir(), "src")
		if err := os.Rename(out, src); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(base, ".cargo"), 0o755)
		config := strings.Replace(ours, fmt.Sprintf("directory = %q", out), fmt.Sprintf("directory = %q", src), 1)
		os.WriteFile(filepath.Join(base, ".cargo", "config.toml"), []byte(config), 0o644)
		cmd := exec.Command(cargo, "vendor", "--offline", "--respect-source-config", "--manifest-path", filepath.Join(proj, "Cargo.toml"), out)
		cmd.Dir = base
		cmd.Env = append(os.Environ(), "CARGO_HOME="+t.TempDir())
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		theirs, err := cmd.Output()
		if err != nil {
			t.Fatalf("cargo vendor %s: %v\n%s", out, err, stderr.Bytes())
		}
		if ours != string(theirs) {
			t.Errorf("--out %s: we print\n%q\ncargo vendor prints\n%q", out, ours, theirs)
		}
		os.RemoveAll(filepath.Join(base, out))
		os.RemoveAll(out)
	}
}

// TestProgressGitOnly: a lock whose only dependency is a git source counts
// it as a git source, not as a crate.
func TestProgressGitOnly(t *testing.T) {
	gitPath := reftest.Need(t, "git")
	repo := t.TempDir()
	writeTree(t, repo, map[string]string{
		"Cargo.toml": "[package]\nname = \"gitdep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
		"src/lib.rs": "pub fn answer() -> u32 { 42 }\n",
	})
	env := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_AUTHOR_DATE=2024-01-02T03:04:05Z",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z")
	var commit string
	for _, args := range [][]string{{"init", "-q", "--initial-branch=main"}, {"add", "."}, {"commit", "-q", "-m", "gitdep"}, {"rev-parse", "HEAD"}} {
		cmd := exec.Command(gitPath, args...)
		cmd.Dir, cmd.Env = repo, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		commit = strings.TrimSpace(string(out))
	}
	dir := writeProject(t, []byte(fmt.Sprintf("version = 4\n\n[[package]]\nname = \"gitdep\"\nversion = \"0.1.0\"\nsource = \"git+file://%s#%s\"\n", repo, commit)))
	t.Setenv("CARGO_HOME", t.TempDir())
	out, errOut, code := runCLI(t, "prefetch", "--cache-dir", t.TempDir(), dir)
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if code != 0 || !strings.HasPrefix(out, "sha256-") || lines[len(lines)-1] != "fetched 1 git source" || !strings.Contains(errOut, "[git 1/1] file://"+repo+"@"+commit+"\n") || strings.Contains(errOut, "crate") {
		t.Errorf("exit %d, stdout %q, stderr %q; want '[git 1/1] …' and 'fetched 1 git source' last", code, out, errOut)
	}
}

// TestFailedGitSourcesReportedOnce: git sources that cannot be fetched are
// all named, each once, in lock order among the crates that failed, and
// the run is not cut short by the first (it once reported one of them, a
// different one from run to run); exit 3.
func TestFailedGitSourcesReportedOnce(t *testing.T) {
	dir, _, _ := crateLock(t, 3)
	lock, _ := os.ReadFile(filepath.Join(dir, "Cargo.lock"))
	s := strings.Replace(string(lock), `name = "c01"`, `name = "gone1"`, 1) // 404
	// Nothing listens on port 1: each fails at once, in process and in git.
	for i, n := range []string{"g3", "g1", "g2"} {
		s += fmt.Sprintf("\n[[package]]\nname = %q\nversion = \"0.1.0\"\nsource = \"git+http://127.0.0.1:1/%s.git#%040d\"\n", n, n, 3-i)
	}
	dir = writeProject(t, []byte(s))
	out, errOut, code := runCLI(t, append([]string{"prefetch"}, fast(t, dir)...)...)
	if code != exitFetch || out != "" {
		t.Fatalf("exit %d, stdout %q, want 3 and nothing: %s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	want := []string{"cargohash: gone1@1.0.0: GET http://127.0.0.1", "cargohash: g3@0.1.0 (git dependency of ", "cargohash: g1@0.1.0 (git dependency of ", "cargohash: g2@0.1.0 (git dependency of "}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), errOut)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], w)
		}
	}
}
