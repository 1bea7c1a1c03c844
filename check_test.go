package cargohash_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

// TestCheckHash recomputes cargoHash from a loopback registry and names
// what changed since the lock that produced the pinned hash.
func TestCheckHash(t *testing.T) {
	ctx := context.Background()
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	var pkgs []lockfile.Package
	for _, nv := range [][2]string{{"serde", "1.0.197"}, {"serde", "1.0.198"}, {"libc", "0.2.150"}} {
		p := reg.AddCrate(nv[0], nv[1], map[string]string{"src/lib.rs": "// " + nv[0] + "\n"})
		p.Source, _ = lockfile.ParseSource(lockfile.CratesIORegistry)
		pkgs = append(pkgs, p)
	}
	cache := t.TempDir()
	open := func(cacheDir string) *cargohash.Session {
		s, err := cargohash.Open(cargohash.Options{Fetch: fetch.Options{CacheDir: cacheDir, NoCache: cacheDir == "", NoCargoHome: true,
			DL: map[string]string{fetch.CratesIOAlias: reg.DL()}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	s := open(cache)
	lockA := chkLoad(t, fetchtest.ProjectLock(pkgs[0], pkgs[2]))
	lockB := chkLoad(t, fetchtest.ProjectLock(pkgs[1], pkgs[2]))
	lockCRLF := chkLoad(t, bytes.ReplaceAll(lockA.Data, []byte("\n"), []byte("\r\n")))
	res, err := s.Prefetch(ctx, lockA)
	if err != nil {
		t.Fatal(err)
	}
	hA := res.CargoHash

	r, err := s.CheckHash(ctx, lockA, hA, false)
	if err != nil || !r.OK || !r.Hash.Got.Equal(hA) || r.Check != "hash" || r.Src != lockA.Path {
		t.Fatalf("same lock: %v %+v", err, r)
	}
	known, err := s.KnownLock(hA)
	if err != nil || known == nil || !bytes.Equal(known.Data, lockA.Data) {
		t.Fatalf("KnownLock: %v %v", err, known)
	}

	r, err = s.CheckHash(ctx, lockB, hA, false)
	if err != nil {
		t.Fatal(err)
	}
	wantText := "~ serde 1.0.197 -> 1.0.198 (checksum " + pkgs[0].Checksum[:8] + "… -> " + pkgs[1].Checksum[:8] + "…)"
	if r.OK || len(r.Problems) != 1 || r.Problems[0].Code != "hash-mismatch" ||
		len(r.Changes) != 1 || r.Changes[0].Kind != "changed" || !reflect.DeepEqual(r.Changes[0].Fields, []string{"version", "checksum"}) || r.Changes[0].Text != wantText ||
		r.Hash.KnownLock != known.Path || r.Hash.Got.Equal(hA) || !r.Hash.Specified.Equal(hA) {
		t.Errorf("bumped lock: %+v %+v", r, r.Changes)
	}

	r, err = s.CheckHash(ctx, lockCRLF, hA, false)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK || len(r.Changes) != 0 || !strings.Contains(r.Problems[0].Message, "differs only in line endings (LF then, CRLF now)") {
		t.Errorf("CRLF lock: %+v", r)
	}

	fake, _, _ := nixhash.ParseExpected("", nixhash.SHA256)
	r, err = s.CheckHash(ctx, lockB, fake, true)
	if err != nil || r.OK || !r.Hash.Fake || len(r.Changes) != 0 || r.Hash.KnownLock != "" {
		t.Errorf("fake hash: %v %+v", err, r)
	}

	// Without a cache nothing is known (and nothing written).
	r, err = open("").CheckHash(ctx, lockB, hA, false)
	if err != nil || r.OK || r.Hash.KnownLock != "" || !strings.Contains(r.Problems[0].Message, "unknown") {
		t.Errorf("no cache: %v %+v", err, r)
	}
}

func chkLoad(t *testing.T, data []byte) *lockfile.File {
	t.Helper()
	lock, err := lockfile.Load(fetchtest.Project(t, data))
	if err != nil {
		t.Fatal(err)
	}
	return lock
}

// rememberWorld is a registry serving ok, and missing, a crate of
// crates.io that it does not serve.
func rememberWorld(t *testing.T) (reg *fetchtest.Registry, ok, missing lockfile.Package) {
	reg = fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	elsewhere := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	ok = reg.AddCrate("serde", "1.0.197", map[string]string{"src/lib.rs": "// serde\n"})
	missing = elsewhere.AddCrate("libc", "0.2.150", map[string]string{"src/lib.rs": "// libc\n"})
	for _, p := range []*lockfile.Package{&ok, &missing} {
		p.Source, _ = lockfile.ParseSource(lockfile.CratesIORegistry)
	}
	return reg, ok, missing
}

// TestRememberLock: a prefetch or staging tree that succeeds leaves its
// lock in the known-locks store under its cargoHash, once; one that fails
// leaves nothing there, not even a temporary file.
func TestRememberLock(t *testing.T) {
	ctx := context.Background()
	reg, ok, missing := rememberWorld(t)
	cache := t.TempDir()
	s, err := cargohash.Open(cargohash.Options{Fetch: fetch.Options{CacheDir: cache, NoCargoHome: true, Retries: -1,
		DL: map[string]string{fetch.CratesIOAlias: reg.DL()}}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	locks := filepath.Join(cache, "locks")
	stored := func() []string {
		t.Helper()
		entries, err := os.ReadDir(locks)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	bad := chkLoad(t, fetchtest.ProjectLock(ok, missing))
	if _, err := s.Prefetch(ctx, bad); err == nil {
		t.Fatal("prefetch of a crate the registry does not have: no error")
	}
	if _, err := s.Staging(ctx, bad, filepath.Join(t.TempDir(), "staging")); err == nil {
		t.Fatal("staging tree of a crate the registry does not have: no error")
	}
	if names := stored(); len(names) != 0 {
		t.Errorf("after failures the store holds %v, want nothing", names)
	}

	good := chkLoad(t, fetchtest.ProjectLock(ok))
	res, err := s.Prefetch(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(res.CargoHash.Digest()) + ".lock"
	if _, err := s.Prefetch(ctx, good); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Staging(ctx, good, filepath.Join(t.TempDir(), "staging")); err != nil {
		t.Fatal(err)
	}
	if names := stored(); !reflect.DeepEqual(names, []string{want}) {
		t.Errorf("the store holds %v, want [%s]", names, want)
	}
	if known, err := s.KnownLock(res.CargoHash); err != nil || known == nil || !bytes.Equal(known.Data, good.Data) {
		t.Errorf("KnownLock: %v, %v", known, err)
	}
}

// TestRememberLockUnwritableStore: a known-locks store that cannot be
// written costs one warning when a command succeeds with a lock the store
// does not hold, and nothing else: no warning beside the error of a
// command that failed (it has nothing to remember), none when the store
// already holds the lock, and never an error.
func TestRememberLockUnwritableStore(t *testing.T) {
	ctx := context.Background()
	reg, ok, missing := rememberWorld(t)
	good := chkLoad(t, fetchtest.ProjectLock(ok))
	bad := chkLoad(t, fetchtest.ProjectLock(ok, missing))
	open := func(cache string) (*cargohash.Session, *bytes.Buffer) {
		t.Helper()
		var log bytes.Buffer
		s, err := cargohash.Open(cargohash.Options{Log: &log, Fetch: fetch.Options{CacheDir: cache, NoCargoHome: true, Retries: -1,
			DL: map[string]string{fetch.CratesIOAlias: reg.DL()}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, &log
	}
	warnings := func(log *bytes.Buffer) []string {
		var w []string
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, "remembering") {
				w = append(w, l)
			}
		}
		log.Reset()
		return w
	}

	t.Run("not a directory", func(t *testing.T) {
		cache := t.TempDir()
		if err := os.WriteFile(filepath.Join(cache, "locks"), []byte("mine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		s, log := open(cache)
		if _, err := s.Prefetch(ctx, bad); err == nil {
			t.Fatal("prefetch of a crate the registry does not have: no error")
		}
		if _, err := s.Staging(ctx, bad, filepath.Join(t.TempDir(), "staging")); err == nil {
			t.Fatal("staging tree of a crate the registry does not have: no error")
		}
		if w := warnings(log); len(w) != 0 {
			t.Errorf("failed commands warned about the store: %q", w)
		}
		if _, err := s.Prefetch(ctx, good); err != nil {
			t.Fatalf("prefetch with a store that cannot be written: %v", err)
		}
		if w := warnings(log); len(w) != 1 || !strings.Contains(w[0], "warning: remembering "+good.Path) {
			t.Errorf("warnings %q, want one naming %s", w, good.Path)
		}
		if b, err := os.ReadFile(filepath.Join(cache, "locks")); err != nil || string(b) != "mine\n" {
			t.Errorf("the file in the store's place: %q, %v", b, err)
		}
	})

	t.Run("read-only, holding the lock", func(t *testing.T) {
		cache := t.TempDir()
		s, log := open(cache)
		if _, err := s.Prefetch(ctx, good); err != nil {
			t.Fatal(err)
		}
		readOnlyDir(t, filepath.Join(cache, "locks"))
		if _, err := s.Prefetch(ctx, good); err != nil {
			t.Fatal(err)
		}
		if w := warnings(log); len(w) != 0 {
			t.Errorf("the store holds the lock, yet: %q", w)
		}
	})
}
