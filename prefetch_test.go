package cargohash_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// TestPrefetchChangedCache: a warm prefetch reads each cached crate once,
// checking its sha256 as it hashes it; a cache entry whose bytes changed
// since it was stored is fetched again, and the cargoHash is the one of
// the registry's bytes. Entries are in a pack (what prefetch writes) or a
// file of their own (what vendoring and earlier versions write).
func TestPrefetchChangedCache(t *testing.T) {
	for _, tc := range []struct {
		name string
		// change changes b's entry in the cache (whose other entries are
		// files of their own if inFiles) and says how many crates must be
		// fetched again.
		change  func(t *testing.T, cache string, b []byte) int
		inFiles bool
	}{
		{"pack/same size", func(t *testing.T, cache string, b []byte) int {
			pack := onlyPack(t, cache)
			data, _ := os.ReadFile(pack)
			reftest.FlipByte(t, pack, int64(bytes.Index(data, b)+len(b)/2))
			return 1
		}, false},
		{"pack/shorter", func(t *testing.T, cache string, b []byte) int {
			pack := onlyPack(t, cache)
			data, _ := os.ReadFile(pack)
			os.Truncate(pack, int64(bytes.Index(data, b)+len(b)-1))
			return 3 // the trailer is gone: the whole pack
		}, false},
		{"pack/empty", func(t *testing.T, cache string, b []byte) int {
			os.Truncate(onlyPack(t, cache), 0)
			return 3
		}, false},
		{"file/same size", changeFile(func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }), true},
		{"file/shorter", changeFile(func(b []byte) []byte { return b[:len(b)-1] }), true},
		{"file/longer", changeFile(func(b []byte) []byte { return append(bytes.Clone(b), 0) }), true},
		{"file/empty", changeFile(func([]byte) []byte { return nil }), true},
		{"file/a symlink to other bytes", func(t *testing.T, cache string, b []byte) int {
			entry := filepath.Join(cache, "crates", "1220"+fetchtest.Checksum(b))
			other := filepath.Join(t.TempDir(), "other")
			os.WriteFile(other, []byte("other bytes"), 0o644)
			os.Remove(entry)
			if err := os.Symlink(other, entry); err != nil {
				t.Fatal(err)
			}
			return 1
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
			var pkgs []lockfile.Package
			crates := map[string][]byte{}
			for _, name := range []string{"a", "b", "c"} {
				data := fetchtest.Crate(name, "1.0.0", map[string]string{"src/lib.rs": "// " + name + "\n"})
				p := reg.Add(name, "1.0.0", data)
				p.Source, _ = lockfile.ParseSource(lockfile.CratesIORegistry)
				pkgs = append(pkgs, p)
				crates[name] = data
			}
			cache := t.TempDir()
			lock := writeLock(t, fetchtest.Lock(pkgs...))
			prefetch := func() *cargohash.Result {
				t.Helper()
				return mustPrefetch(t, cargohash.Options{Fetch: fetch.Options{
					CacheDir: cache, NoCargoHome: true,
					DL: map[string]string{fetch.CratesIOAlias: reg.DL()},
				}}, lock)
			}
			cold := prefetch()
			if tc.inFiles {
				os.RemoveAll(filepath.Join(cache, "packs"))
				for _, data := range crates {
					os.WriteFile(filepath.Join(cache, "crates", "1220"+fetchtest.Checksum(data)), data, 0o644)
				}
			}
			want := tc.change(t, cache, crates["b"])
			for run, want := range []int{want, 0} {
				before := reg.TotalRequests()
				warm := prefetch()
				if warm.CargoHash != cold.CargoHash {
					t.Errorf("run %d after the change: %v, want %v", run+1, warm.CargoHash, cold.CargoHash)
				}
				if n := reg.TotalRequests() - before; n != want {
					t.Errorf("run %d after the change: %d requests, want %d", run+1, n, want)
				}
			}
		})
	}
}

// changeFile replaces b's file in the cache with change(b).
func changeFile(change func([]byte) []byte) func(t *testing.T, cache string, b []byte) int {
	return func(t *testing.T, cache string, b []byte) int {
		entry := filepath.Join(cache, "crates", "1220"+fetchtest.Checksum(b))
		if err := os.WriteFile(entry, change(b), 0o644); err != nil {
			t.Fatal(err)
		}
		return 1
	}
}

// onlyPack is the one pack in cache.
func onlyPack(t *testing.T, cache string) string {
	t.Helper()
	packs, _ := filepath.Glob(filepath.Join(cache, "packs", "*.pack"))
	if len(packs) != 1 {
		t.Fatalf("packs %v, want one", packs)
	}
	return packs[0]
}
