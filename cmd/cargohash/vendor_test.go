package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/reftest"
)

// demoArgs fetch the demo project's crates offline from its mirror.
func demoArgs(t *testing.T) []string {
	mirror, err := filepath.Abs("../../testdata/demo/mirror")
	if err != nil {
		t.Fatal(err)
	}
	return fast(t, "--offline", "--registry-dl", "crates-io=file://"+mirror+"/crates/{crate}/{crate}-{version}.crate")
}

// demoProject copies the demo project (sources and lock) to a fresh directory.
func demoProject(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "demo")
	for _, f := range []string{"Cargo.toml", "Cargo.lock", "src/main.rs"} {
		data, err := os.ReadFile(filepath.Join("../../testdata/demo", f))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestVendorBuildsWithCargo: real cargo builds the demo project offline and
// --locked from each layout `cargohash vendor` writes (and from one made
// from a staging tree).
func TestVendorBuildsWithCargo(t *testing.T) {
	cargo := reftest.Need(t, "cargo")
	for _, tc := range []struct {
		name  string
		args  []string
		fromS bool
	}{
		{"nixpkgs layout", []string{"--absolute"}, false},
		{"nixpkgs layout from staging", []string{"--absolute"}, true},
		{"cargo layout", []string{"--layout", "cargo"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proj := demoProject(t)
			vendor := filepath.Join(t.TempDir(), "vendor")
			args := append([]string{"vendor", "--out", vendor}, tc.args...)
			if tc.fromS {
				staging := filepath.Join(t.TempDir(), "staging")
				if _, errOut, code := runCLI(t, append([]string{"staging", "--out", staging}, append(demoArgs(t), proj)...)...); code != 0 {
					t.Fatalf("staging: exit %d: %s", code, errOut)
				}
				args = append(args, "--staging", staging)
			} else {
				args = append(args, append(demoArgs(t), proj)...)
			}
			out, errOut, code := runCLI(t, args...)
			if code != 0 {
				t.Fatalf("vendor: exit %d: %s", code, errOut)
			}
			config := out // cargo layout: the [source] snippet, as cargo vendor prints it
			if config == "" {
				b, err := os.ReadFile(filepath.Join(vendor, ".cargo", "config.toml"))
				if err != nil {
					t.Fatal(err)
				}
				config = string(b)
			}
			if strings.Contains(config, "@vendor@") {
				t.Fatalf("config still has the placeholder:\n%s", config)
			}
			os.MkdirAll(filepath.Join(proj, ".cargo"), 0o755)
			os.WriteFile(filepath.Join(proj, ".cargo", "config.toml"), []byte(config), 0o644)
			build := exec.Command(cargo, "build", "--offline", "--locked")
			build.Dir = proj
			build.Env = append(os.Environ(), "CARGO_HOME="+t.TempDir(), "CARGO_TARGET_DIR="+filepath.Join(proj, "target"))
			if b, err := build.CombinedOutput(); err != nil {
				t.Fatalf("cargo build --offline --locked: %v\n%s", err, b)
			}
			got, err := exec.Command(filepath.Join(proj, "target", "debug", "demo")).Output()
			if err != nil || string(got) != "42 1.5\nSome(2)\n" {
				t.Fatalf("demo printed %q, %v", got, err)
			}
		})
	}
}

// TestOutTrailingSlash: --out DIR/, as a shell completes a directory, is
// DIR for every writer. vendor from a lock failed ("stat v: no such file
// or directory"), and into an existing empty DIR/ it made its temporary
// directory inside DIR, then refused DIR for holding it (found by review).
func TestOutTrailingSlash(t *testing.T) {
	proj := demoProject(t)
	for _, cmd := range []string{"vendor", "staging"} {
		for _, existing := range []bool{false, true} {
			dir := filepath.Join(t.TempDir(), "out")
			if existing {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for run := range 2 { // the second into its own earlier output
				args := append([]string{cmd, "--quiet", "--out", dir + "/"}, append(demoArgs(t), proj)...)
				if _, errOut, code := runCLI(t, args...); code != 0 {
					t.Fatalf("%s --out %s/ (existing %v, run %d): exit %d\n%s", cmd, dir, existing, run, code, errOut)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "Cargo.lock")); err != nil {
				t.Errorf("%s --out %s/: %v", cmd, dir, err)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
				t.Errorf("%s --out %s/: beside it %v, want only out", cmd, dir, entries)
			}
		}
	}
}
