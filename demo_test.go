package cargohash_test

import (
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

var update = flag.Bool("update", false, "regenerate testdata/demo from Debian's crate sources and Nix")

// demoCrates are real crate sources from Debian's librust-*-dev packages.
var demoCrates = []string{"cfg-if-1.0.0", "itoa-1.0.1", "memchr-2.5.0", "ryu-1.0.2"}

const (
	demoDir   = "testdata/demo"
	demoGold  = "testdata/demo/cargoHash"
	debianReg = "/usr/share/cargo/registry"
)

// demoDL is the --registry-dl value of the README's demo command.
func demoDL(t testing.TB) string {
	abs, err := filepath.Abs(filepath.Join(demoDir, "mirror"))
	if err != nil {
		t.Fatal(err)
	}
	return "file://" + abs + "/crates/{crate}/{crate}-{version}.crate"
}

// TestDemo runs the README's main job (prefetch of testdata/demo, offline,
// from its file:// mirror) and checks it against the golden hash, which
// -update takes from `nix hash path` of the staging tree.
func TestDemo(t *testing.T) {
	if *update {
		regenerateDemo(t)
	}
	lock, err := lockfile.Load(demoDir)
	if err != nil {
		t.Fatal(err)
	}
	res := mustPrefetch(t, cargohash.Options{Fetch: fetch.Options{
		NoCache: true, Offline: true, NoCargoHome: true,
		DL: map[string]string{fetch.CratesIOAlias: demoDL(t)},
	}}, lock)
	gold, err := os.ReadFile(demoGold)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.CargoHash.String(), strings.TrimSpace(string(gold)); got != want {
		t.Fatalf("demo cargoHash = %s, golden (nix hash path) = %s", got, want)
	}
}

// regenerateDemo packs Debian's crate sources into .crate files in a
// file:// mirror, writes the demo project's Cargo.lock (crates.io sources),
// stages it and records `nix hash path` of the staging tree as the golden.
func regenerateDemo(t *testing.T) {
	nix, feat := reftest.Nix(t)
	var crates []fetchtest.CrateData
	var pkgs []lockfile.Package
	var deps []string
	for _, dir := range demoCrates {
		i := strings.LastIndex(dir[:strings.IndexByte(dir, '.')], "-") // NAME-MAJOR.MINOR.PATCH
		name, version := dir[:i], dir[i+1:]
		root := filepath.Join(debianReg, dir)
		var files []fetchtest.File
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if rel == "debian" || rel == ".cargo-checksum.json" {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			body, err := os.ReadFile(p)
			files = append(files, fetchtest.File{Name: filepath.ToSlash(rel), Body: string(body)})
			return err
		})
		if err != nil {
			t.Fatalf("%v (install librust-%s-dev)", err, name)
		}
		data := fetchtest.CrateFiles(name, version, files)
		crates = append(crates, fetchtest.CrateData{Name: name, Version: version, Data: data})
		pkgs = append(pkgs, fetchtest.CratesIO(name, version, data))
		deps = append(deps, name)
	}
	os.RemoveAll(filepath.Join(demoDir, "mirror"))
	if _, _, err := fetchtest.WriteMirror(filepath.Join(demoDir, "mirror"), crates); err != nil {
		t.Fatal(err)
	}
	// Only the crate files are used (through --registry-dl); the index
	// WriteMirror also writes would pin this machine's absolute path.
	for _, e := range []string{"config.json", "3", "cf", "it", "me", "ry"} {
		os.RemoveAll(filepath.Join(demoDir, "mirror", e))
	}
	local := lockfile.Package{Name: "demo", Version: "0.1.0", Dependencies: deps}
	if err := os.WriteFile(filepath.Join(demoDir, "Cargo.lock"), fetchtest.Lock(append([]lockfile.Package{local}, pkgs...)...), 0o644); err != nil {
		t.Fatal(err)
	}
	lock, err := lockfile.Load(demoDir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cargohash.Open(cargohash.Options{Fetch: fetch.Options{NoCache: true, Offline: true, NoCargoHome: true,
		DL: map[string]string{fetch.CratesIOAlias: demoDL(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := filepath.Join(t.TempDir(), "staging")
	if _, err := s.Staging(context.Background(), lock, out); err != nil {
		t.Fatal(err)
	}
	want := reftest.Run(t, nix, append(feat, "hash", "path", out)...)
	if err := os.WriteFile(demoGold, want, 0o644); err != nil {
		t.Fatal(err)
	}
}
