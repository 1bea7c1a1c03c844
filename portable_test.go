package cargohash_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

func TestCollisions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files []string
		want  string
	}{
		{"none", []string{"a.rs", "b.rs", "src/a.rs", "A/x"}, ""},
		{"case", []string{"README.md", "Readme.md"}, `"README.md" and "Readme.md"`},
		{"nfc nfd", []string{"caf\u00e9.txt", "cafe\u0301.txt"}, `"cafe` + "\u0301" + `.txt" and "caf` + "\u00e9" + `.txt"`},
		{"nested dirs", []string{"src/Mod/a.rs", "src/mod/b.rs"}, `"src/Mod" and "src/mod"`},
	} {
		fsys := fstest.MapFS{}
		for _, f := range tc.files {
			fsys[f] = &fstest.MapFile{Data: []byte("x")}
		}
		got, err := cargohash.Collisions(fsys)
		if err != nil || strings.Join(got, "; ") != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestSrcWarnsGitDependency: a git dependency whose tree has colliding names
// is named on the log, with --import-cargo-lock too.
func TestSrcWarnsGitDependency(t *testing.T) {
	url, commit := gitRepo(t, map[string]string{
		"Cargo.toml": "[package]\nname = \"g\"\nversion = \"0.1.0\"\n",
		"src/lib.rs": "",
		"LICENSE":    "a\n",
		"License":    "b\n",
	})
	src, err := lockfile.ParseSource("git+" + url + "?branch=main#" + commit)
	if err != nil {
		t.Fatal(err)
	}
	lock := fetchtest.Lock(lockfile.Package{Name: "proj", Version: "1.0.0"}, lockfile.Package{Name: "g", Version: "0.1.0", Source: src})
	dir := filepath.Join(t.TempDir(), "proj")
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "Cargo.lock"), lock, 0o644))
	for _, imp := range []bool{false, true} {
		var log bytes.Buffer
		s, err := cargohash.Open(cargohash.Options{Fetch: fetch.Options{NoCache: true, NoCargoHome: true}, Log: &log})
		must(t, err)
		res, err := s.Src(context.Background(), dir, cargohash.SrcOptions{ImportCargoLock: imp})
		s.Close()
		must(t, err)
		if len(res.Cargo.OutputHashes) != 1 || res.Fetcher != "" {
			t.Errorf("import %v: %+v", imp, res)
		}
		if !strings.Contains(log.String(), `git dependency g@0.1.0: "LICENSE" and "License"`) {
			t.Errorf("import %v: no warning in the log:\n%s", imp, log.String())
		}
	}
}
