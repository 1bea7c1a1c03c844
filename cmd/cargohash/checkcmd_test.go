package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/cargohash/cargohash/hash/gnutar"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
	"github.com/cargohash/cargohash/vendortree"
)

// checkWorld: two crates.io crates (and a bumped serde), as bytes.
type checkWorld struct {
	crates              map[string][]byte
	serde, serde2, libc lockfile.Package
}

func newCheckWorld() *checkWorld {
	w := &checkWorld{crates: map[string][]byte{}}
	add := func(name, version string) lockfile.Package {
		data := fetchtest.Crate(name, version, map[string]string{"src/lib.rs": "// " + name + " " + version + "\n"})
		w.crates[name+"-"+version+".tar.gz"] = data
		return fetchtest.CratesIO(name, version, data)
	}
	w.serde, w.serde2, w.libc = add("serde", "1.0.197"), add("serde", "1.0.198"), add("libc", "0.2.150")
	return w
}

func (w *checkWorld) staging(t *testing.T, lock []byte) string {
	dir := filepath.Join(t.TempDir(), "staging")
	fetchtest.WriteFile(t, filepath.Join(dir, "Cargo.lock"), lock)
	l, err := lockfile.Parse("Cargo.lock", lock)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Fetchable() {
		nv := p.Name + "-" + p.Version + ".tar.gz"
		fetchtest.WriteFile(t, filepath.Join(dir, "tarballs", nv), w.crates[nv])
	}
	return dir
}

func (w *checkWorld) vendor(t *testing.T, lock []byte, layout vendortree.Kind) string {
	out := filepath.Join(t.TempDir(), "vendor")
	in, err := vendortree.StagingDir(w.staging(t, lock))
	if err != nil {
		t.Fatal(err)
	}
	if err := vendortree.Write(context.Background(), in, out, vendortree.Options{Layout: layout}); err != nil {
		t.Fatal(err)
	}
	return out
}

func srcDir(t *testing.T, lock []byte) string {
	dir := filepath.Join(t.TempDir(), "src")
	fetchtest.WriteFile(t, filepath.Join(dir, "Cargo.lock"), lock)
	return dir
}

func TestCheckLockCommand(t *testing.T) {
	w := newCheckWorld()
	orig := fetchtest.ProjectLock(w.serde, w.libc)
	bumped := fetchtest.ProjectLock(w.serde2, w.libc)
	staging := w.staging(t, orig)
	nixpkgs := w.vendor(t, orig, vendortree.Nixpkgs)

	src := srcDir(t, orig)
	out, errOut, code := runCLI(t, "check", "--src", src, "--vendor", staging)
	if want := "ok: " + src + "/Cargo.lock is the Cargo.lock of " + staging + " (staging dir), byte for byte\n"; code != 0 || out != want || errOut != "" {
		t.Errorf("identical: exit %d\n%s\nwant\n%s\nstderr %s", code, out, want, errOut)
	}
	out, _, code = runCLI(t, "check", src, "--vendor", nixpkgs) // LOCK as an argument
	if want := "ok: " + src + "/Cargo.lock is the Cargo.lock of " + nixpkgs + " (nixpkgs-layout vendor tree), byte for byte\n" +
		"ok: 2 crates match their .cargo-checksum.json and " + nixpkgs + "/Cargo.lock\n"; code != 0 || out != want {
		t.Errorf("identical nixpkgs: exit %d\n%s\nwant\n%s", code, out, want)
	}

	src = srcDir(t, bumped)
	out, errOut, code = runCLI(t, "check", "--src", src, "--vendor", nixpkgs)
	wantHead := "Cargo.lock changes from " + nixpkgs + " (nixpkgs-layout vendor tree) to " + src + "/Cargo.lock (+ only in the new, - only in the old, ~ changed):\n" +
		"  ~ serde 1.0.197 -> 1.0.198 (checksum " + w.serde.Checksum[:8] + "… -> " + w.serde2.Checksum[:8] + "…)\n" +
		"ERROR: cargoHash or cargoSha256 is out of date\n\nCargo.lock is not the same in " + nixpkgs + "\n"
	if code != 1 || !strings.HasPrefix(out, wantHead) || !strings.HasSuffix(out, "\nFAILED: lock-packages-differ\n") || errOut != "" ||
		!strings.Contains(out, "`cargohash prefetch "+src+"/Cargo.lock`") {
		t.Errorf("bumped: exit %d\n%s\nwant prefix\n%s\nstderr %s", code, out, wantHead, errOut)
	}

	out, _, code = runCLI(t, "check", "--src", src, "--vendor", nixpkgs, "--json")
	var r struct {
		Check    string
		OK       bool
		Problems []struct{ Code, Message string }
		Src      string
		Vendor   struct{ Path, Kind, Lock string }
		Changes  []struct {
			Kind, Name string
			Old, New   struct{ Name, Version, Source, Checksum string }
			Fields     []string
			Text       string
		}
		Hash   any
		Issues []any
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != 1 || r.Check != "lock" || r.OK || len(r.Problems) != 1 || r.Problems[0].Code != "lock-packages-differ" ||
		r.Vendor.Kind != "nixpkgs" || r.Vendor.Lock != nixpkgs+"/Cargo.lock" || len(r.Changes) != 1 ||
		r.Changes[0].Old.Version != "1.0.197" || r.Changes[0].New.Version != "1.0.198" || r.Changes[0].New.Checksum != w.serde2.Checksum ||
		strings.Join(r.Changes[0].Fields, ",") != "version,checksum" || r.Hash != nil || r.Issues == nil {
		t.Errorf("--json: exit %d\n%s", code, out)
	}

	// CRLF only: the same packages, other bytes.
	src = srcDir(t, bytes.ReplaceAll(orig, []byte("\n"), []byte("\r\n")))
	out, _, code = runCLI(t, "check", "--src", src, "--vendor", staging)
	if code != 1 || !strings.HasPrefix(out, "the locks differ only in line endings (src: CRLF, vendor: LF)") ||
		!strings.HasSuffix(out, "FAILED: lock-line-endings-differ\n") {
		t.Errorf("CRLF: exit %d\n%s", code, out)
	}

	// Missing locks.
	empty := t.TempDir()
	out, _, code = runCLI(t, "check", "--src", empty, "--vendor", staging)
	if want := "ERROR: Missing Cargo.lock from src. Expected to find it at: " + empty + "/Cargo.lock\n" +
		"Hint: You can use the cargoPatches attribute to add a Cargo.lock manually to the build.\nFAILED: src-lock-missing\n"; code != 1 || out != want {
		t.Errorf("missing src lock: exit %d\n%s\nwant\n%s", code, out, want)
	}
	noLock := w.staging(t, orig)
	os.Remove(filepath.Join(noLock, "Cargo.lock"))
	out, _, code = runCLI(t, "check", "--src", srcDir(t, orig), "--vendor", noLock)
	if code != 1 || !strings.HasPrefix(out, "ERROR: Missing lockfile from cargo vendor. Expected to find it at: "+noLock+"/Cargo.lock\n") ||
		!strings.HasSuffix(out, "FAILED: vendor-lock-missing\n") {
		t.Errorf("missing vendor lock: exit %d\n%s", code, out)
	}
}

func TestCheckVendorCommand(t *testing.T) {
	w := newCheckWorld()
	orig := fetchtest.ProjectLock(w.serde, w.libc)
	cargo := w.vendor(t, orig, vendortree.Cargo)
	out, _, code := runCLI(t, "check", "--vendor", cargo)
	if want := "ok: 2 crates of " + cargo + " (cargo-layout vendor tree) match their .cargo-checksum.json (no Cargo.lock in the tree and none given with --src: package checksums not compared with a lock)\n"; code != 0 || out != want {
		t.Errorf("intact: exit %d\n%s\nwant\n%s", code, out, want)
	}
	fetchtest.WriteFile(t, filepath.Join(cargo, "serde/src/lib.rs"), []byte("evil\n"))
	fetchtest.WriteFile(t, filepath.Join(cargo, "libc/build.rs"), []byte("evil\n"))
	out, _, code = runCLI(t, "check", "--vendor", cargo)
	want := "problems in " + cargo + " (cargo-layout vendor tree):\n" +
		"  libc@0.2.150: libc/build.rs: not listed in .cargo-checksum.json\n" +
		"  serde@1.0.197: serde/src/lib.rs: sha256 " + fetchtest.Checksum([]byte("evil\n")) + ", .cargo-checksum.json says " + fetchtest.Checksum([]byte("// serde 1.0.197\n")) + "\n" +
		"FAILED: vendor-tree\n"
	if code != 1 || out != want {
		t.Errorf("tampered: exit %d\n%s\nwant\n%s", code, out, want)
	}
	// With a src lock whose serde is bumped: the crates differ too.
	out, _, code = runCLI(t, "check", "--vendor", cargo, "--src", srcDir(t, fetchtest.ProjectLock(w.serde2, w.libc)))
	if code != 1 || !strings.Contains(out, "  ~ serde 1.0.197 -> 1.0.198 (checksum") || !strings.HasSuffix(out, "FAILED: lock-packages-differ, vendor-tree\n") {
		t.Errorf("tampered and bumped: exit %d\n%s", code, out)
	}
}

func TestCheckCommandInputErrors(t *testing.T) {
	w := newCheckWorld()
	orig := fetchtest.ProjectLock(w.serde, w.libc)
	// A truncated tarball.
	nixpkgs := w.vendor(t, orig, vendortree.Nixpkgs)
	tarball := filepath.Join(t.TempDir(), "v.tar.gz")
	fetchtest.WriteFile(t, tarball, truncatedTarGz(t, nixpkgs))
	_, errOut, code := runCLI(t, "check", "--src", srcDir(t, orig), "--vendor", tarball)
	if code != 2 || !strings.HasPrefix(errOut, "cargohash: "+tarball+": reading vendor tarball: ") {
		t.Errorf("truncated tarball: exit %d, stderr %q", code, errOut)
	}
	for _, args := range [][]string{
		{"check"},
		{"check", "--src", "a", "b", "--vendor", "x"},
		{"check", "--hash", "", "--vendor", "x"},
		{"check", "--vendor", filepath.Join(t.TempDir(), "nope")},
		{"check", "--hash", "sha256-nope"},
	} {
		if _, errOut, code := runCLI(t, args...); code != 2 || !strings.HasPrefix(errOut, "cargohash: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
	out, _, code := runCLI(t, "check", "--help")
	if code != 0 || !strings.Contains(out, `"problems": [{"code", "message"}]`) || !strings.Contains(out, "check LOCK --hash HASH") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
}

// truncatedTarGz is a .tar.gz of dir (hash/gnutar) cut in the middle.
func truncatedTarGz(t *testing.T, dir string) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := gnutar.NewWriter(zw)
	if err := gnutar.WriteFS(context.Background(), tw, os.DirFS(dir), "x-vendor"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()[:buf.Len()/2]
}

func TestCheckHashCommand(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	var pkgs []lockfile.Package
	for _, v := range []string{"1.0.197", "1.0.198"} {
		p := reg.AddCrate("serde", v, map[string]string{"src/lib.rs": "// serde\n"})
		p.Source, _ = lockfile.ParseSource(lockfile.CratesIORegistry)
		pkgs = append(pkgs, p)
	}
	flags := []string{"--registry-dl", "crates-io=" + reg.DL(), "--cache-dir", t.TempDir(), "--quiet"}
	a, b := srcDir(t, fetchtest.ProjectLock(pkgs[0])), srcDir(t, fetchtest.ProjectLock(pkgs[1]))
	out, errOut, code := runCLI(t, append([]string{"check", a, "--hash", ""}, flags...)...)
	m := regexp.MustCompile(`(?m)^error: hash mismatch in fixed-output derivation 'src-vendor-staging':\n {9}specified: sha256-A{43}=\n {12}got: {4}(sha256-\S+)\n$`).FindStringSubmatch(errOut)
	if code != 1 || m == nil || out != "a fake hash was specified; pin the one got\nFAILED: hash-mismatch\n" {
		t.Fatalf("fake hash: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	hA := m[1]
	out, errOut, code = runCLI(t, append([]string{"check", a, "--hash", hA}, flags...)...)
	if want := "ok: the cargoHash of " + a + "/Cargo.lock is " + hA + "\n"; code != 0 || out != want || errOut != "" {
		t.Errorf("same lock: exit %d\n%s\nwant %s\nstderr %s", code, out, want, errOut)
	}
	out, errOut, code = runCLI(t, append([]string{"check", b, "--hash", hA, "--name", "demo"}, flags...)...)
	wantOut := "Cargo.lock changes from the lock that produced " + hA + " to " + b + "/Cargo.lock (+ only in the new, - only in the old, ~ changed):\n" +
		"  ~ serde 1.0.197 -> 1.0.198 (checksum " + pkgs[0].Checksum[:8] + "… -> " + pkgs[1].Checksum[:8] + "…)\n"
	if code != 1 || !strings.HasPrefix(out, wantOut) || !strings.HasSuffix(out, "FAILED: hash-mismatch\n") ||
		!strings.HasPrefix(errOut, "error: hash mismatch in fixed-output derivation 'demo-vendor-staging':\n         specified: "+hA+"\n") {
		t.Errorf("bumped: exit %d\n%s\nwant prefix\n%s\nstderr %s", code, out, wantOut, errOut)
	}
	out, _, code = runCLI(t, append([]string{"check", b, "--hash", hA, "--json"}, flags...)...)
	var r struct {
		Check string
		OK    bool
		Hash  struct {
			Specified, Got, KnownLock string
			Fake                      bool
		}
		Changes []struct{ Kind, Name string }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 1 || r.Check != "hash" || r.OK || r.Hash.Specified != hA ||
		r.Hash.Got == hA || r.Hash.KnownLock == "" || r.Hash.Fake || len(r.Changes) != 1 || r.Changes[0].Name != "serde" {
		t.Errorf("--json: exit %d, %v\n%s", code, err, out)
	}
}
