package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// registryLock serves crates on loopback and writes a v4 lock naming them
// (two versions of one crate among them); it returns the lock's directory,
// the registry and the crates' lock entries.
func registryLock(t *testing.T) (string, *fetchtest.Registry, []lockfile.Package) {
	t.Helper()
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	var pkgs []lockfile.Package
	for _, nv := range [][2]string{{"serde", "1.0.197"}, {"serde", "1.0.100"}, {"memchr", "2.7.4"}, {"a", "0.1.0"}} {
		pkgs = append(pkgs, reg.AddCrate(nv[0], nv[1], map[string]string{"src/lib.rs": "// " + nv[0] + "\n"}))
	}
	return writeProject(t, fetchtest.Lock(pkgs...)), reg, pkgs
}

func writeProject(t *testing.T, lock []byte) string {
	dir := filepath.Join(t.TempDir(), "proj")
	os.Mkdir(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "Cargo.lock"), lock, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// fast are flags that keep tests quick: no shared cache, tiny backoff.
func fast(t *testing.T, args ...string) []string {
	t.Setenv("CARGO_HOME", t.TempDir())
	return append([]string{"--cache-dir", t.TempDir(), "--retry-wait", "1ms", "--quiet"}, args...)
}

// prefetchAndStaging runs prefetch and staging --out on the lock at dir,
// both required to succeed, and returns the hash printed and the tree.
func prefetchAndStaging(t *testing.T, dir string) (hash, staging string) {
	t.Helper()
	out, errOut, code := runCLI(t, append([]string{"prefetch"}, fast(t, dir)...)...)
	if code != 0 {
		t.Fatalf("prefetch: exit %d: %s", code, errOut)
	}
	staging = filepath.Join(t.TempDir(), "s")
	if _, errOut, code := runCLI(t, append([]string{"staging", "--out", staging}, fast(t, dir)...)...); code != 0 {
		t.Fatalf("staging: exit %d: %s", code, errOut)
	}
	return strings.TrimSpace(out), staging
}

func TestPrefetchCommand(t *testing.T) {
	nix, feat := reftest.Nix(t)
	dir, _, _ := registryLock(t)
	hash, staging := prefetchAndStaging(t, dir)
	if want := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", staging)...))); hash != want {
		t.Fatalf("prefetch printed %s; nix hash path of the staging tree is %s", hash, want)
	}

	// --json
	out, _, code := runCLI(t, append([]string{"prefetch", "--json"}, fast(t, dir)...)...)
	var res struct {
		CargoHash    string            `json:"cargoHash"`
		OutputHashes map[string]string `json:"outputHashes"`
		Crates       int               `json:"crates"`
		GitSources   int               `json:"gitSources"`
		Bytes        int64             `json:"bytes"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.CargoHash != hash || res.Crates != 4 || res.GitSources != 0 || res.Bytes == 0 {
		t.Fatalf("prefetch --json = %s (exit %d, %v)", out, code, err)
	}

	// --expect: equal (any form Nix accepts), then fake and wrong.
	nix32 := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "to-base32", hash)...)))
	for _, ok := range []string{hash, "sha256:" + nix32, nix32} {
		if _, errOut, code := runCLI(t, append([]string{"prefetch", "--expect", ok}, fast(t, dir)...)...); code != 0 {
			t.Errorf("--expect %s: exit %d: %s", ok, code, errOut)
		}
	}
	for _, bad := range []string{"", "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="} {
		out, errOut, code := runCLI(t, append([]string{"prefetch", "--expect", bad, "--name", "demo"}, fast(t, dir)...)...)
		specified := bad
		if bad == "" {
			specified = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
		}
		want := "error: hash mismatch in fixed-output derivation 'demo-vendor-staging':\n" +
			"         specified: " + specified + "\n" +
			"            got:    " + hash + "\n"
		if code != 1 || errOut != want || strings.TrimSpace(out) != hash {
			t.Errorf("--expect %q: exit %d, stdout %q, stderr:\n%s\nwant:\n%s", bad, code, out, errOut, want)
		}
	}
}

// TestPrefetchSurvivesTransientFaults: the first two requests of every
// crate answer 503, and one connection is reset.
func TestPrefetchSurvivesTransientFaults(t *testing.T) {
	dir, reg, pkgs := registryLock(t)
	for _, p := range pkgs {
		reg.Inject(reg.CratePath(p.Name, p.Version), fetchtest.Fault{Kind: fetchtest.Status, Status: 503, Times: 2})
	}
	reg.Inject(reg.CratePath("a", "0.1.0"), fetchtest.Fault{Kind: fetchtest.Reset}) // after its two 503s
	out, errOut, code := runCLI(t, append([]string{"prefetch"}, fast(t, dir)...)...)
	if code != 0 || !strings.HasPrefix(out, "sha256-") {
		t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
	}
	if got := reg.Requests(reg.CratePath("a", "0.1.0")); got != 4 {
		t.Errorf("a@0.1.0 was requested %d times, want 4 (two 503, one reset, one good)", got)
	}
}

// TestFetchErrors: each bad input is a clear error naming the crate, URL or
// line, with the exit code of SPEC §1, and staging leaves nothing behind.
func TestFetchErrors(t *testing.T) {
	dir, reg, pkgs := registryLock(t)
	lock, _ := os.ReadFile(filepath.Join(dir, "Cargo.lock"))
	serde := pkgs[0]
	tests := []struct {
		name  string
		lock  string
		fault *fetchtest.Fault
		want  []string
		code  int
	}{
		{name: "checksum mismatch", lock: strings.Replace(string(lock), serde.Checksum, strings.Repeat("0", 64), 1),
			want: []string{"verifying serde@1.0.197: checksum mismatch", "downloaded: " + serde.Checksum, "Cargo.lock: " + strings.Repeat("0", 64)}, code: 3},
		{name: "404", lock: strings.Replace(string(lock), `name = "a"`, `name = "nope"`, 1),
			want: []string{"nope@0.1.0", "/nope/0.1.0", "404 Not Found"}, code: 3},
		{name: "500 forever", fault: &fetchtest.Fault{Kind: fetchtest.Status, Status: 500, Times: -1},
			want: []string{"serde@1.0.197", "500 Internal Server Error", "gave up after 3 attempts"}, code: 3},
		{name: "truncated forever", fault: &fetchtest.Fault{Kind: fetchtest.Truncate, Times: -1},
			want: []string{"serde@1.0.197", "GET http://127.0.0.1"}, code: 3},
		{name: "reset forever", fault: &fetchtest.Fault{Kind: fetchtest.Reset, Times: -1},
			want: []string{"serde@1.0.197", "GET http://127.0.0.1"}, code: 3},
		{name: "malformed TOML", lock: string(lock) + "\n[[package]\nname = 1\n",
			want: []string{"Cargo.lock:"}, code: 2},
		{name: "unknown source kind", lock: strings.Replace(string(lock), "sparse+http", "local-registry+http", 1),
			want: []string{"Cargo.lock:", "serde@1.0.197", "local-registry+"}, code: 2},
		{name: "missing checksum", lock: strings.Replace(string(lock), `checksum = "`+serde.Checksum+`"`, "", 1),
			want: []string{"serde@1.0.197", "checksum"}, code: 2},
		{name: "duplicate package", lock: string(lock) + "\n[[package]]\nname = \"a\"\nversion = \"0.1.0\"\nsource = \"" + pkgs[3].Source.Raw + "\"\nchecksum = \"" + pkgs[3].Checksum + "\"\n",
			want: []string{"Cargo.lock:", "a@0.1.0", "duplicate"}, code: 2},
		{name: "missing lock", lock: "-", want: []string{"no Cargo.lock in ", "cargo generate-lockfile"}, code: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := dir
			if tt.lock == "-" {
				d = t.TempDir()
			} else if tt.lock != "" {
				d = writeProject(t, []byte(tt.lock))
			}
			if tt.fault != nil {
				reg.Inject(reg.CratePath(serde.Name, serde.Version), *tt.fault)
				defer reg.Inject(reg.CratePath(serde.Name, serde.Version)) // later tests: no fault
			}
			parent := t.TempDir()
			out, errOut, code := runCLI(t, append([]string{"staging", "--retries", "2", "--out", filepath.Join(parent, "out")}, fast(t, d)...)...)
			if out != "" {
				t.Errorf("stdout %q on error", out)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not contain %q", errOut, w)
				}
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				t.Errorf("left behind in the output's directory: %v", entries)
			}
		})
	}
}

// TestUserAgent: requests name the tool and its version (crates.io's API
// host refuses generic library agents).
func TestUserAgent(t *testing.T) {
	dir, reg, _ := registryLock(t)
	if _, errOut, code := runCLI(t, append([]string{"prefetch"}, fast(t, dir)...)...); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := reg.UserAgents(); len(got) != 1 || got[0] != "cargohash/"+cargohash.Version {
		t.Fatalf("User-Agent headers %q, want cargohash/%s", got, cargohash.Version)
	}
}

// TestPrefetchLockModeAsNix: nixpkgs copies Cargo.lock into the staging
// tree with its mode (shutil.copy), and Nix records it as executable by
// its owner's execute bit alone: a lock of mode 0654 is not executable to
// Nix, one of 0744 is.
func TestPrefetchLockModeAsNix(t *testing.T) {
	nix, feat := reftest.Nix(t)
	dir, _, _ := registryLock(t)
	lock := filepath.Join(dir, "Cargo.lock")
	for _, mode := range []os.FileMode{0o654, 0o744, 0o644} {
		if err := os.Chmod(lock, mode); err != nil {
			t.Fatal(err)
		}
		hash, staging := prefetchAndStaging(t, dir)
		// The reference's copy of the lock: its bytes and its mode.
		if err := os.Chmod(filepath.Join(staging, "Cargo.lock"), mode); err != nil {
			t.Fatal(err)
		}
		if want := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", staging)...))); hash != want {
			t.Errorf("lock mode %04o: prefetch printed %s; nix hash path of the staging tree with the lock's mode is %s", mode, hash, want)
		}
	}
}
