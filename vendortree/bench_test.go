package vendortree

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
)

// benchWorld is a staging dir (and the same crates as a cargo local
// registry with a project depending on all of them) of n synthetic crates
// of about 30 files each, deterministic content.
type benchWorld struct {
	staging, project string
	env              []string
	home             string
}

func newBenchWorld(b *testing.B, n int) *benchWorld {
	b.Helper()
	base := b.TempDir()
	w := &benchWorld{staging: filepath.Join(base, "staging"), project: filepath.Join(base, "project"), home: filepath.Join(base, "home")}
	reg := filepath.Join(base, "registry")
	rng := rand.New(rand.NewSource(1))
	var lock, deps strings.Builder
	lock.WriteString("version = 4\n\n[[package]]\nname = \"bench\"\nversion = \"0.1.0\"\ndependencies = [\n")
	var pkgs strings.Builder
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("crate%04d", i)
		nv := name + "-1.0.0"
		man := "[package]\nname = \"" + name + "\"\nversion = \"1.0.0\"\nedition = \"2021\"\n"
		es := []fetchtest.Entry{fetchtest.FileEntry(nv+"/Cargo.toml", man), fetchtest.FileEntry(nv+"/Cargo.toml.orig", man), fetchtest.FileEntry(nv+"/src/lib.rs", "pub fn f() {}\n")}
		for j := 0; j < 28; j++ {
			body := make([]byte, 1024+rng.Intn(8192))
			for k := range body {
				body[k] = byte('a' + rng.Intn(26))
			}
			es = append(es, fetchtest.FileEntry(fmt.Sprintf("%s/src/m%d/f%d.rs", nv, j%4, j), string(body)))
		}
		crate := fetchtest.TarGz(es)
		sum := sha256.Sum256(crate)
		mustWrite(b, filepath.Join(w.staging, "tarballs", nv+".tar.gz"), crate, 0o644)
		mustWrite(b, filepath.Join(reg, nv+".crate"), crate, 0o644)
		mustWrite(b, filepath.Join(reg, "index", filepath.FromSlash(fetchtest.IndexFile(name))), indexLine(b, name, "1.0.0", []byte(man), crate), 0o644)
		fmt.Fprintf(&lock, " %q,\n", name)
		fmt.Fprintf(&pkgs, "\n[[package]]\nname = %q\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = %q\n", name, hex.EncodeToString(sum[:]))
		fmt.Fprintf(&deps, "%s = \"1\"\n", name)
	}
	lock.WriteString("]\n")
	lock.WriteString(pkgs.String())
	mustWrite(b, filepath.Join(w.staging, "Cargo.lock"), []byte(lock.String()), 0o644)
	mustWrite(b, filepath.Join(w.project, "Cargo.toml"), []byte("[package]\nname = \"bench\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n"+deps.String()), 0o644)
	mustWrite(b, filepath.Join(w.project, "src", "lib.rs"), nil, 0o644)
	mustWrite(b, filepath.Join(w.project, "Cargo.lock"), []byte(lock.String()), 0o644)
	mustWrite(b, filepath.Join(w.home, "config.toml"), []byte("[source.crates-io]\nreplace-with = \"local\"\n\n[source.local]\nlocal-registry = \""+reg+"\"\n"), 0o644)
	mustWrite(b, filepath.Join(reg, "index", "config.json"), []byte(`{"dl":"file:///nonexistent","api":null}`), 0o644)
	w.env = []string{"CARGO_HOME=" + w.home}
	return w
}

// BenchmarkFromStaging vendors 300 crates (about 9000 files, 45 MiB) from a
// staging dir; the cargo-vendor sub-benchmarks run real `cargo vendor` on
// the same crates from a local registry, with its unpacked-source cache
// emptied before each run (cold) or kept (warm).
func BenchmarkFromStaging(b *testing.B) {
	w := newBenchWorld(b, 300)
	for _, layout := range []Kind{Nixpkgs, Cargo} {
		b.Run(layout.String(), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				out := filepath.Join(b.TempDir(), "vendor")
				if err := fromStaging(context.Background(), w.staging, out, Options{Layout: layout}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, cold := range []bool{true, false} {
		name := "cargo-vendor-warm"
		if cold {
			name = "cargo-vendor-cold"
		}
		b.Run(name, func(b *testing.B) {
			cargo := reftest.Need(b, "cargo")
			for i := 0; i < b.N; i++ {
				out := filepath.Join(b.TempDir(), "vendor")
				if cold {
					b.StopTimer()
					os.RemoveAll(filepath.Join(w.home, "registry", "src"))
					b.StartTimer()
				}
				run(b, w.project, w.env, cargo, "vendor", "--respect-source-config", "--offline", "--locked", "--quiet", out)
			}
		})
	}
}
