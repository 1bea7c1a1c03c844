package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
)

// TestSrcCommand: the fragment and the JSON for an archive URL and a
// crate, with the source hash from nix-prefetch-url and the cargoHash from
// prefetch on the same lock.
func TestSrcCommand(t *testing.T) {
	tarBin := reftest.Need(t, "tar")
	dir, reg, _ := registryLock(t)
	top := filepath.Join(filepath.Dir(dir), "proj-1.0")
	if err := os.Rename(dir, top); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "proj.tar.gz")
	if out, err := exec.Command(tarBin, "-C", filepath.Dir(top), "-czf", archive, "proj-1.0").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	cargoHash, errOut, code := runCLI(t, append([]string{"prefetch"}, fast(t, top)...)...)
	if code != 0 {
		t.Fatalf("prefetch: exit %d: %s", code, errOut)
	}
	srcHash := reftest.PrefetchUnpack(t, archive)

	out, errOut, code := runCLI(t, append([]string{"src"}, fast(t, "file://"+archive)...)...)
	want := "src = fetchzip {\n  url = \"file://" + archive + "\";\n  hash = \"" + srcHash + "\";\n};\ncargoHash = \"" + strings.TrimSpace(cargoHash) + "\";\n"
	if code != 0 || out != want {
		t.Errorf("src: exit %d, stderr %s\ngot:\n%s\nwant:\n%s", code, errOut, out, want)
	}

	out, _, code = runCLI(t, append([]string{"src", "--json"}, fast(t, "file://"+archive)...)...)
	var js struct {
		Fetcher   string            `json:"fetcher"`
		Args      map[string]string `json:"args"`
		CargoHash string            `json:"cargoHash"`
	}
	if err := json.Unmarshal([]byte(out), &js); code != 0 || err != nil || js.Fetcher != "fetchzip" || js.Args["hash"] != srcHash ||
		js.Args["url"] != "file://"+archive || js.CargoHash != strings.TrimSpace(cargoHash) {
		t.Errorf("src --json: exit %d, %v:\n%s", code, err, out)
	}

	// crate:NAME@VERSION from the registry given for crates.io.
	lock, err := os.ReadFile(filepath.Join(top, "Cargo.lock"))
	if err != nil {
		t.Fatal(err)
	}
	data := fetchtest.Crate("tool", "1.0.0", map[string]string{"Cargo.lock": string(lock), "src/main.rs": "fn main() {}\n"})
	reg.Add("tool", "1.0.0", data)
	crateFile := filepath.Join(t.TempDir(), "tool-1.0.0.tar.gz")
	if err := os.WriteFile(crateFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	want = "src = fetchCrate {\n  pname = \"tool\";\n  version = \"1.0.0\";\n  hash = \"" + reftest.PrefetchUnpack(t, crateFile) + "\";\n};\ncargoHash = \"" + strings.TrimSpace(cargoHash) + "\";\n"
	for _, spelling := range []string{"crate:tool@1.0.0", "https://crates.io/crates/tool/1.0.0"} {
		out, errOut, code = runCLI(t, append([]string{"src", "--registry-dl", "crates-io=" + reg.DL()}, fast(t, spelling)...)...)
		if code != 0 || out != want {
			t.Errorf("src %s: exit %d, stderr %s\ngot:\n%s\nwant:\n%s", spelling, code, errOut, out, want)
		}
	}
}

// TestSrcQuietWarns: --quiet hides progress, not the warning that Nix on
// macOS would hash the source differently.
func TestSrcQuietWarns(t *testing.T) {
	tarBin := reftest.Need(t, "tar")
	dir, _, _ := registryLock(t)
	for _, name := range []string{"NOTES.md", "notes.md"} {
		fetchtest.WriteFile(t, filepath.Join(dir, name), []byte(name))
	}
	archive := filepath.Join(t.TempDir(), "proj.tar.gz")
	if out, err := exec.Command(tarBin, "-C", filepath.Dir(dir), "-czf", archive, filepath.Base(dir)).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	out, errOut, code := runCLI(t, append([]string{"src"}, fast(t, "file://"+archive)...)...)
	if code != 0 || out == "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "warning: ") ||
		!strings.Contains(errOut, `"NOTES.md" and "notes.md" are one name on a case-insensitive`) {
		t.Errorf("src --quiet: exit %d, stdout %q, stderr %q; want the collision warning alone", code, out, errOut)
	}
}

// TestSrcCommandBadInput: exit 3 for what could not be fetched, 2 for what
// is not a usable source; one line on stderr, nothing on stdout.
func TestSrcCommandBadInput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login.tar.gz" {
			w.Write([]byte("<!doctype html>\n<html><body>Sign in</body></html>\n"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	dir := t.TempDir()
	// A bomb: one entry declaring 5 GiB (no need to write them: the size
	// is refused from the header).
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "p/zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: 5 << 30})
	tw.Write(make([]byte, 1<<20))
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "bomb.tar.gz"), bomb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "corrupt.tar.gz"), bomb.Bytes()[:40], 0o644); err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	if out, err := exec.Command(reftest.Need(t, "git"), "init", "-q", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"404", []string{srv.URL + "/missing.tar.gz"}, exitFetch, "404 Not Found"},
		{"html", []string{srv.URL + "/login.tar.gz"}, exitInput, "an HTML page"},
		{"bomb", []string{"file://" + filepath.Join(dir, "bomb.tar.gz")}, exitInput, "unpacks to more than"},
		{"corrupt", []string{"file://" + filepath.Join(dir, "corrupt.tar.gz")}, exitInput, "unexpected EOF"},
		{"no such ref", []string{"file://" + repo, "v9.9"}, exitFetch, "no such tag or branch"},
		{"no arguments", nil, exitInput, "want SOURCE [REF]"},
	} {
		out, errOut, code := runCLI(t, append([]string{"src"}, fast(t, c.args...)...)...)
		if code != c.code || out != "" || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%s: exit %d (want %d), stdout %q, stderr %q (want %q)", c.name, code, c.code, out, errOut, c.want)
		}
	}
}

// TestSrcFragments: the Nix and JSON spellings of each output shape.
func TestSrcFragments(t *testing.T) {
	h, err := nixhash.Parse("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	if err != nil {
		t.Fatal(err)
	}
	res := &cargohash.SrcResult{
		Fetcher:  "fetchFromGitHub",
		Args:     []cargohash.SrcArg{{Name: "owner", Value: "o"}, {Name: "repo", Value: `r"${x}`}, {Name: "fetchSubmodules", Value: true}, {Name: "hash", Value: h.String()}},
		LockFile: "sub/Cargo.lock",
		Cargo:    &cargohash.Result{CargoHash: h, OutputHashes: map[string]nixhash.Hash{"b-1.0": h, "a-0.1": h}},
	}
	for _, tc := range []struct {
		imp           bool
		nix, wantJSON string
	}{
		{false,
			"src = fetchFromGitHub {\n  owner = \"o\";\n  repo = \"r\\\"\\${x}\";\n  fetchSubmodules = true;\n  hash = \"" + h.String() + "\";\n};\ncargoHash = \"" + h.String() + "\";\n",
			`{"fetcher":"fetchFromGitHub","args":{"owner":"o","repo":"r\"${x}","fetchSubmodules":true,"hash":"` + h.String() + `"},"cargoHash":"` + h.String() + `","outputHashes":{"a-0.1":"` + h.String() + `","b-1.0":"` + h.String() + `"}}`},
		{true,
			"src = fetchFromGitHub {\n  owner = \"o\";\n  repo = \"r\\\"\\${x}\";\n  fetchSubmodules = true;\n  hash = \"" + h.String() + "\";\n};\ncargoLock = {\n  lockFile = ./Cargo.lock; # a copy of the source's sub/Cargo.lock\n  outputHashes = {\n    \"a-0.1\" = \"" + h.String() + "\";\n    \"b-1.0\" = \"" + h.String() + "\";\n  };\n};\n",
			`{"fetcher":"fetchFromGitHub","args":{"owner":"o","repo":"r\"${x}","fetchSubmodules":true,"hash":"` + h.String() + `"},"lockFile":"sub/Cargo.lock","outputHashes":{"a-0.1":"` + h.String() + `","b-1.0":"` + h.String() + `"}}`},
	} {
		if got := srcNix(res, tc.imp); got != tc.nix {
			t.Errorf("import %v: Nix\n%s\nwant\n%s", tc.imp, got, tc.nix)
		}
		got, err := json.Marshal(srcJSON(res, tc.imp))
		if err != nil || string(got) != tc.wantJSON {
			t.Errorf("import %v: JSON %s %v\nwant %s", tc.imp, got, err, tc.wantJSON)
		}
	}
}
