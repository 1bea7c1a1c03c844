package cargohash_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

// TestPrefetchChangedCache: a warm prefetch reads each cached crate once,
// checking its sha256 as it hashes it; a cache entry whose bytes changed
// since it was stored is fetched again, and the cargoHash is the one of
// the registry's bytes.
func TestPrefetchChangedCache(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func([]byte) []byte
	}{
		{"same size", func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 1; return c }},
		{"shorter", func(b []byte) []byte { return b[:len(b)-1] }},
		{"longer", func(b []byte) []byte { return append(bytes.Clone(b), 0) }},
		{"empty", func([]byte) []byte { return nil }},
		{"a symlink to other bytes", nil},
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
			s, err := cargohash.Open(cargohash.Options{Fetch: fetch.Options{
				CacheDir: cache, NoCargoHome: true,
				DL: map[string]string{fetch.CratesIOAlias: reg.DL()},
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			lock := writeLock(t, fetchtest.Lock(pkgs...))
			cold, err := s.Prefetch(context.Background(), lock)
			if err != nil {
				t.Fatal(err)
			}
			entry := filepath.Join(cache, "crates", "1220"+fetchtest.Checksum(crates["b"]))
			os.Remove(entry)
			switch {
			case tc.change != nil:
				err = os.WriteFile(entry, tc.change(crates["b"]), 0o644)
			default:
				other := filepath.Join(t.TempDir(), "other")
				os.WriteFile(other, crates["a"], 0o644)
				err = os.Symlink(other, entry)
			}
			if err != nil {
				t.Fatal(err)
			}
			before := reg.TotalRequests()
			warm, err := s.Prefetch(context.Background(), lock)
			if err != nil {
				t.Fatal(err)
			}
			if warm.CargoHash != cold.CargoHash {
				t.Errorf("with a changed cache entry: %v, want %v", warm.CargoHash, cold.CargoHash)
			}
			if got, _ := os.ReadFile(entry); !bytes.Equal(got, crates["b"]) {
				t.Errorf("cache entry not fetched again (%d bytes, want %d)", len(got), len(crates["b"]))
			}
			if n := reg.TotalRequests() - before; n != 1 {
				t.Errorf("%d requests after the change, want 1 (the changed crate)", n)
			}
		})
	}
}
