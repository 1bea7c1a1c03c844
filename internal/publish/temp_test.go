package publish

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSweep: a write removes the temporary names killed processes left
// beside its destination, and nothing else: not a name in use (locked),
// not a young one, not a user's file that merely looks alike.
func TestSweep(t *testing.T) {
	defer func(age time.Duration) { sweepAge = age }(sweepAge)
	sweepAge = 0
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	mk := func(rel string, dir bool) {
		p := filepath.Join(parent, rel)
		if dir {
			if err := os.MkdirAll(filepath.Join(p, "crate"), 0o755); err != nil {
				t.Fatal(err)
			}
			p = filepath.Join(p, "crate", "lib.rs")
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	leftovers := []string{".out.cargohash-tmp-123", ".out.cargohash-old-456", ".vendor.cargohash-git-7"}
	for _, l := range leftovers {
		mk(l, true)
	}
	mk(".out.cargohash-tmp-89", false)
	leftovers = append(leftovers, ".out.cargohash-tmp-89")
	users := []string{".out.tmp-1", ".out.old-2", "out.cargohash-tmp-3", ".out.cargohash-tmp-x", "notes.txt"}
	for _, u := range users {
		mk(u, false)
	}
	if err := os.Symlink(".out.tmp-1", filepath.Join(parent, ".link.cargohash-tmp-5")); err != nil {
		t.Fatal(err)
	}
	users = append(users, ".link.cargohash-tmp-5")
	inUse, release, err := TempDir(filepath.Join(parent, "other"), "tmp") // another writer's, still working
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	swept.Delete(parent) // TempDir swept already; the writer below is another process

	if err := Dir(context.Background(), out, Options{}, func(tmp string) error {
		return os.WriteFile(filepath.Join(tmp, "f"), nil, 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	for _, l := range leftovers {
		if _, err := os.Lstat(filepath.Join(parent, l)); err == nil {
			t.Errorf("leftover %s was not removed", l)
		}
	}
	for _, u := range append(users, filepath.Base(inUse), "out/f") {
		if _, err := os.Lstat(filepath.Join(parent, u)); err != nil {
			t.Errorf("%s: %v; want it kept", u, err)
		}
	}

	// A young unlocked name may be one a writer has just made and not yet
	// locked: it stays.
	sweepAge = time.Hour
	mk(".out.cargohash-tmp-99", false)
	swept.Delete(parent)
	if err := File(context.Background(), out+".txt", 0o644, Options{}, func(w io.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(parent, ".out.cargohash-tmp-99")); err != nil {
		t.Errorf("a young temporary name was removed: %v", err)
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".out.cargohash-tmp-123":         true,
		".out.cargohash-old-4":           true,
		".vendor.tar.gz.cargohash-git-5": true,
		"..cargohash-tmp-1":              false, // no base
		".x.cargohash-tmp-":              false,
		".x.cargohash--1":                false,
		".x.cargohash-Tmp-1":             false,
		".x.cargohash-tmp-1a":            false,
		"x.cargohash-tmp-1":              false,
		".out.tmp-123":                   false,
		".out.cargohash-tmp-1/":          false,
	} {
		if IsTemp(name) != want {
			t.Errorf("IsTemp(%q) = %v, want %v", name, !want, want)
		}
	}
}

// TestTemp: a Temp is invisible at its destination until Commit, survives
// a sweep while open, and leaves nothing after Abort.
func TestTemp(t *testing.T) {
	defer func(age time.Duration) { sweepAge = age }(sweepAge)
	sweepAge = 0
	dir := t.TempDir()
	dst := filepath.Join(dir, "a.pack")
	tmp, err := CreateTemp(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteAt([]byte("packed"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("%s exists before Commit", dst)
	}
	swept.Delete(dir)
	sweep(dir) // another process's sweep: the name is locked
	if err := tmp.Commit(0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(dst); err != nil || string(b) != "packed" {
		t.Fatalf("after Commit: %q, %v", b, err)
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode())
	}

	other, err := CreateTemp(filepath.Join(dir, "b.pack"))
	if err != nil {
		t.Fatal(err)
	}
	other.Abort()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "a.pack" {
		t.Errorf("left %v, want only a.pack", entries)
	}
}

// TestTempCommitNew: CommitNew names the file after its content, leaves
// what is already at that name alone, and refuses a name in another
// directory; no temporary name is left in any case.
func TestTempCommitNew(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) *Temp {
		t.Helper()
		tmp, err := CreateTemp(filepath.Join(dir, "lock"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tmp.WriteString(content); err != nil {
			t.Fatal(err)
		}
		return tmp
	}
	named := filepath.Join(dir, "ab.lock")
	if err := write("first").CommitNew(named, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := write("second").CommitNew(named, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(named); err != nil || string(b) != "first" {
		t.Errorf("%s: %q, %v; want the first content, left alone", named, b, err)
	}
	if fi, _ := os.Stat(named); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode())
	}
	if err := write("elsewhere").CommitNew(filepath.Join(t.TempDir(), "cd.lock"), 0o644); err == nil {
		t.Error("a name in another directory: no error")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "ab.lock" {
		t.Errorf("left %v, want only ab.lock", entries)
	}
}

// TestTempCommitNewRace: CommitNew leaves alone what another process puts
// at its name while it commits. A check then a rename replaced it (found
// by review, in the first few rounds of this test).
func TestTempCommitNewRace(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(t.TempDir(), "foreign")
	if err := os.WriteFile(foreign, []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "ab.lock")
	for round := range 2000 {
		os.Remove(dst)
		tmp, err := CreateTemp(filepath.Join(dir, "lock"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tmp.WriteString("ours"); err != nil {
			t.Fatal(err)
		}
		linked := make(chan error)
		go func() { linked <- os.Link(foreign, dst) }() // never replaces
		if err := tmp.CommitNew(dst, 0o644); err != nil {
			t.Fatal(err)
		}
		linkErr := <-linked
		b, err := os.ReadFile(dst)
		if err != nil {
			t.Fatal(err)
		}
		if linkErr == nil && string(b) == "ours" {
			t.Fatalf("round %d: the file put at %s while CommitNew ran was replaced", round, dst)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left %v, want only ab.lock", entries)
	}
}
