package fetch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

func TestPrefix(t *testing.T) {
	// cargo's make_dep_prefix (src/cargo/sources/registry/mod.rs).
	tests := []struct{ name, want string }{
		{"a", "1"},
		{"A", "1"},
		{"ab", "2"},
		{"abc", "3/a"},
		{"Abc", "3/A"},
		{"abcd", "ab/cd"},
		{"serde", "se/rd"},
		{"Inflector", "In/fl"},
		{"a-b_c", "a-/b_"},
	}
	for _, tt := range tests {
		if got := Prefix(tt.name); got != tt.want {
			t.Errorf("Prefix(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDownloadURL(t *testing.T) {
	const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pkg := func(name, version string) lockfile.Package {
		return lockfile.Package{Name: name, Version: version, Checksum: sum}
	}
	tests := []struct {
		dl   string
		pkg  lockfile.Package
		want string
	}{
		// No marker: "/{crate}/{version}/download" is appended.
		{CratesIODL, pkg("serde", "1.0.197"), "https://static.crates.io/crates/serde/1.0.197/download"},
		// ... even after a trailing slash, as cargo does.
		{"https://r.example/api/v1/crates/", pkg("serde", "1.0.197"), "https://r.example/api/v1/crates//serde/1.0.197/download"},
		{"https://r.example/{crate}/{version}", pkg("serde", "1.0.0+build.1"), "https://r.example/serde/1.0.0+build.1"},
		{"https://r.example/{crate}-{version}.crate", pkg("serde", "1.0.0"), "https://r.example/serde-1.0.0.crate"},
		{"https://r.example/{prefix}/{crate}", pkg("a", "1.0.0"), "https://r.example/1/a"},
		{"https://r.example/{prefix}/{crate}", pkg("ab", "1.0.0"), "https://r.example/2/ab"},
		{"https://r.example/{prefix}/{crate}", pkg("Abc", "1.0.0"), "https://r.example/3/A/Abc"},
		{"https://r.example/{lowerprefix}/{crate}", pkg("Abc", "1.0.0"), "https://r.example/3/a/Abc"},
		{"https://r.example/{prefix}/{crate}", pkg("Inflector", "0.11.4"), "https://r.example/In/fl/Inflector"},
		{"https://r.example/{lowerprefix}/{crate}", pkg("Inflector", "0.11.4"), "https://r.example/in/fl/Inflector"},
		// One marker is enough to suppress the suffix.
		{"https://r.example/by-sum/{sha256-checksum}", pkg("serde", "1.0.0"), "https://r.example/by-sum/" + sum},
		{"https://r.example/{version}", pkg("serde", "1.0.0"), "https://r.example/1.0.0"},
		{"https://r.example/x?name={crate}&v={version}", pkg("serde", "1.0.0"), "https://r.example/x?name=serde&v=1.0.0"},
		{"file:///srv/mirror/{lowerprefix}/{crate}/{crate}-{version}.crate", pkg("Serde", "1.0.0"), "file:///srv/mirror/se/rd/Serde/Serde-1.0.0.crate"},
		// Braces that are no marker stay, around and inside markers too.
		{"https://r.example/{x}/{{crate}}/{crat", pkg("serde", "1.0.0"), "https://r.example/{x}/{serde}/{crat"},
		{"https://r.example/{x}", pkg("serde", "1.0.0"), "https://r.example/{x}/serde/1.0.0/download"},
		{"https://r.example/{", pkg("serde", "1.0.0"), "https://r.example/{/serde/1.0.0/download"},
	}
	for _, tt := range tests {
		if got := DownloadURL(tt.dl, tt.pkg); got != tt.want {
			t.Errorf("DownloadURL(%q, %s) = %q, want %q", tt.dl, tt.pkg.ID(), got, tt.want)
		}
	}
}

func TestURL(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{DL: "/dl/{lowerprefix}/{crate}/{crate}-{version}.crate"})
	sparse := reg.AddCrate("Serde", "1.0.0", nil)

	gitIndex := lockfile.Source{Raw: "registry+https://git.example/index", Kind: lockfile.Registry, URL: "https://git.example/index"}
	gitReads := 0
	gitRead := func(ctx context.Context, url, path string) ([]byte, error) {
		gitReads++
		if url != gitIndex.URL || path != "config.json" {
			return nil, errors.New("unexpected read")
		}
		return []byte(`{"dl": "https://dl.example/{crate}/{version}.crate", "api": "https://api.example"}`), nil
	}

	cratesIOGit := fetchtest.CratesIO("serde", "1.0.197", []byte("x"))
	cratesIOSparse := cratesIOGit
	cratesIOSparse.Source = lockfile.Source{Raw: lockfile.CratesIOSparse, Kind: lockfile.Sparse, URL: "https://index.crates.io/"}
	onGit := lockfile.Package{Name: "foo", Version: "0.1.0", Source: gitIndex, Checksum: cratesIOGit.Checksum}

	tests := []struct {
		name string
		opts Options
		pkg  lockfile.Package
		want string
		err  error
	}{
		{"crates.io git index", Options{}, cratesIOGit, "https://static.crates.io/crates/serde/1.0.197/download", nil},
		{"crates.io sparse", Options{}, cratesIOSparse, "https://static.crates.io/crates/serde/1.0.197/download", nil},
		{"crates.io alias override", Options{DL: map[string]string{"crates-io": "https://mirror.example/{crate}-{version}.crate"}}, cratesIOSparse, "https://mirror.example/serde-1.0.197.crate", nil},
		{"crates.io raw override", Options{DL: map[string]string{lockfile.CratesIORegistry: "file:///m"}}, cratesIOGit, "file:///m/serde/1.0.197/download", nil},
		{"raw override only for its source", Options{DL: map[string]string{lockfile.CratesIORegistry: "file:///m"}}, cratesIOSparse, "https://static.crates.io/crates/serde/1.0.197/download", nil},
		{"sparse config.json", Options{}, sparse, reg.URL + "/dl/se/rd/Serde/Serde-1.0.0.crate", nil},
		{"sparse override", Options{DL: map[string]string{sparse.Source.Raw: "http://127.0.0.1:1/x"}}, sparse, "http://127.0.0.1:1/x/Serde/1.0.0/download", nil},
		{"git index config.json", Options{GitReadFile: gitRead}, onGit, "https://dl.example/foo/0.1.0.crate", nil},
		{"git index without git", Options{}, onGit, "", ErrSource},
		{"git index offline", Options{GitReadFile: gitRead, Offline: true}, onGit, "", ErrOffline},
		{"sparse offline", Options{Offline: true}, sparse, "", ErrOffline},
		{"git source", Options{}, lockfile.Package{Name: "g", Version: "1.0.0", Source: lockfile.Source{Raw: "git+https://x#abc", Kind: lockfile.Git}}, "", ErrSource},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newTestFetcher(t, tt.opts)
			before := reg.TotalRequests()
			got, err := f.URL(context.Background(), tt.pkg)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("URL = %q, %v; want error %v", got, err, tt.err)
				}
				if !strings.HasPrefix(err.Error(), tt.pkg.ID()+": ") {
					t.Errorf("error %q does not start with %s", err, tt.pkg.ID())
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("URL = %q, %v; want %q", got, err, tt.want)
			}
			if tt.pkg.Source.Raw != sparse.Source.Raw || tt.opts.DL != nil {
				if n := reg.TotalRequests() - before; n != 0 {
					t.Errorf("%d requests to the registry, want none", n)
				}
			}
		})
	}
	if gitReads != 1 {
		t.Errorf("GitReadFile called %d times, want 1", gitReads)
	}
}

// TestConfigOnce checks that config.json is fetched once per registry and
// run, however many crates ask for it at once.
func TestConfigOnce(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	reg.Inject(reg.ConfigPath(), fetchtest.Fault{Kind: fetchtest.Delay, Delay: 50 * time.Millisecond})
	var pkgs []lockfile.Package
	for _, name := range []string{"a", "bb", "ccc", "dddd", "eeeee", "ffffff"} {
		pkgs = append(pkgs, reg.AddCrate(name, "1.0.0", nil))
	}
	f := newTestFetcher(t, Options{})
	var g errgroup.Group
	var mu sync.Mutex
	got := map[string]string{}
	for _, p := range pkgs {
		g.Go(func() error {
			u, err := f.URL(context.Background(), p)
			mu.Lock()
			got[p.Name] = u
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests(reg.ConfigPath()); n != 1 {
		t.Errorf("config.json requested %d times, want 1", n)
	}
	for _, p := range pkgs {
		if want := reg.CrateURL(p.Name, p.Version); got[p.Name] != want {
			t.Errorf("%s: URL %q, want %q", p.ID(), got[p.Name], want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		fault fetchtest.Fault
		want  string
	}{
		{"404", fetchtest.Fault{Kind: fetchtest.Status, Status: 404, Times: -1}, "config.json: 404 Not Found"},
		{"not json", fetchtest.Fault{Kind: fetchtest.Status, Status: 200, Times: -1}, "config.json of registry sparse+http://127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
			pkg := reg.AddCrate("serde", "1.0.0", nil)
			reg.Inject(reg.ConfigPath(), tt.fault)
			f := newTestFetcher(t, Options{})
			_, err := f.Crate(context.Background(), pkg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "serde@1.0.0: ") {
				t.Fatalf("err = %v, want one naming serde@1.0.0 and containing %q", err, tt.want)
			}
		})
	}
}
