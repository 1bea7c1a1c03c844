package fetch

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// TestCargoInterop lets cargo resolve and download from a loopback registry
// whose dl uses markers, then checks that fetch derives the URLs cargo
// used from cargo's own Cargo.lock, and reuses cargo's download cache
// offline once the registry is gone.
func TestCargoInterop(t *testing.T) {
	cargo := reftest.Need(t, "cargo")
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{DL: "/dl/{lowerprefix}/{prefix}/{crate}/{version}/{sha256-checksum}"})
	names := []string{"x", "Yz", "abc", "Hello-World"}
	for _, n := range names {
		reg.AddCrate(n, "1.0.0", nil)
	}

	dir := t.TempDir()
	home := filepath.Join(dir, "cargo-home")
	proj := filepath.Join(dir, "app")
	os.MkdirAll(home, 0o755)
	os.MkdirAll(filepath.Join(proj, "src"), 0o755)
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("[registries.fake]\nindex = \"sparse+"+reg.IndexURL()+"\"\n"), 0o644)
	manifest := "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n"
	for _, n := range names {
		manifest += n + " = { version = \"1\", registry = \"fake\" }\n"
	}
	os.WriteFile(filepath.Join(proj, "Cargo.toml"), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(proj, "src", "lib.rs"), nil, 0o644)
	cmd := exec.Command(cargo, "fetch")
	cmd.Dir = proj
	cmd.Env = append(os.Environ(), "CARGO_HOME="+home, "CARGO_NET_RETRY=0", "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("cargo fetch: %v\n%s", err, stderr.String())
	}
	for _, n := range names {
		if c := reg.Requests(reg.CratePath(n, "1.0.0")); c != 1 {
			t.Errorf("cargo: %d requests for %s", c, reg.CratePath(n, "1.0.0"))
		}
	}

	lockData, err := os.ReadFile(filepath.Join(proj, "Cargo.lock"))
	if err != nil {
		t.Fatal(err)
	}
	lf, err := lockfile.Parse("Cargo.lock", lockData)
	if err != nil {
		t.Fatal(err)
	}
	pkgs := lf.Fetchable()
	if len(pkgs) != len(names) {
		t.Fatalf("cargo's lock has %d registry packages", len(pkgs))
	}
	f := newTestFetcher(t, Options{})
	for _, p := range pkgs {
		u, err := f.URL(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		if want := reg.CrateURL(p.Name, p.Version); u != want {
			t.Errorf("%s: URL %s, cargo used %s", p.ID(), u, want)
		}
	}

	reg.Close()
	f = newTestFetcher(t, Options{CargoHome: home, Offline: true})
	for _, p := range pkgs {
		if _, err := f.Crate(context.Background(), p); err != nil {
			t.Error(err)
		}
	}
}
