package cargohash_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
	"github.com/cargohash/cargohash/vendortree"
)

func demoSession(t *testing.T, jobs int) (*cargohash.Session, *lockfile.File) {
	t.Helper()
	lock, err := lockfile.Load(demoDir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cargohash.Open(cargohash.Options{Fetch: fetch.Options{
		Jobs: jobs, NoCache: true, Offline: true, NoCargoHome: true,
		DL: map[string]string{fetch.CratesIOAlias: demoDL(t)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, lock
}

// TestTarballMatchesGNUTar: the uncompressed tarball is byte for byte what
// GNU tar writes with SPEC §8's flags on the same tree, modes normalised.
func TestTarballMatchesGNUTar(t *testing.T) {
	tarBin := reftest.Need(t, "tar")
	s, lock := demoSession(t, 0)
	dir := t.TempDir()
	out := filepath.Join(dir, "demo.tar")
	if _, err := s.Tarball(context.Background(), lock, out, "demo"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)

	// The same tree, built step by step, archived by GNU tar.
	ref := t.TempDir()
	tree := filepath.Join(ref, "demo-vendor")
	if err := s.Vendor(context.Background(), lock, tree, vendortree.Options{Layout: vendortree.Cargo}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tree, "Cargo.lock"), lock.Data, 0o644)
	os.Mkdir(filepath.Join(tree, ".cargo"), 0o755)
	os.WriteFile(filepath.Join(tree, ".cargo", "config.toml"), []byte(vendortree.CargoSourceConfig(lock.Lockfile, vendortree.VendorPlaceholder)), 0o644)
	filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
		info, _ := d.Info()
		switch {
		case d.IsDir():
			os.Chmod(p, 0o755)
		case d.Type().IsRegular() && info.Mode()&0o111 != 0:
			os.Chmod(p, 0o755)
		case d.Type().IsRegular():
			os.Chmod(p, 0o644)
		}
		return err
	})
	cmd := exec.Command(tarBin, "--format=gnu", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1", "-C", ref, "-cf", "-", "demo-vendor")
	cmd.Env = []string{"LC_ALL=C", "TZ=UTC"}
	want, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("tarball (%d bytes) differs from GNU tar's (%d bytes) at byte %d", len(got), len(want), diffAt(got, want))
	}
}

func diffAt(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestTarballDeterministic: the same lock gives the same bytes whatever the
// job count, umask and time zone; GNU tar and zstd read the results; and the
// compressed hashes are pinned so that a compressor upgrade shows up here.
func TestTarballDeterministic(t *testing.T) {
	tarBin := reftest.Need(t, "tar")
	zstdBin := reftest.Need(t, "zstd")
	gold, err := os.ReadFile(filepath.Join(demoDir, "tarball-hashes"))
	if err != nil && !*update {
		t.Fatal(err)
	}
	var lines []string
	for _, suffix := range []string{".tar", ".tar.gz", ".tar.zst"} {
		var first []byte
		for i, env := range []struct {
			jobs  int
			umask int
			tz    string
		}{{1, 0o022, "UTC"}, {16, 0o077, "Asia/Kathmandu"}} {
			old := syscall.Umask(env.umask)
			t.Setenv("TZ", env.tz)
			s, lock := demoSession(t, env.jobs)
			out := filepath.Join(t.TempDir(), "demo"+suffix)
			h, err := s.Tarball(context.Background(), lock, out, "demo")
			syscall.Umask(old)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(out)
			if i == 0 {
				first = data
				lines = append(lines, suffix+" "+h.String())
			} else if !bytes.Equal(first, data) {
				t.Errorf("%s: bytes differ between runs with jobs/umask/TZ %v", suffix, env)
			}
			var list []byte
			switch suffix {
			case ".tar.zst":
				dec := exec.Command(zstdBin, "-d", "-c", out)
				raw, err := dec.Output()
				if err != nil {
					t.Fatalf("zstd -d: %v", err)
				}
				c := exec.Command(tarBin, "-tf", "-")
				c.Stdin = bytes.NewReader(raw)
				list, err = c.Output()
				if err != nil {
					t.Fatalf("tar -t of the zstd stream: %v", err)
				}
			default:
				if list, err = exec.Command(tarBin, "-tf", out).Output(); err != nil {
					t.Fatalf("tar -tf %s: %v", out, err)
				}
			}
			if !strings.Contains(string(list), "demo-vendor/memchr/.cargo-checksum.json") {
				t.Errorf("%s: tar lists no memchr checksum file:\n%s", suffix, list)
			}
		}
	}
	got := strings.Join(lines, "\n") + "\n"
	if *update {
		os.WriteFile(filepath.Join(demoDir, "tarball-hashes"), []byte(got), 0o644)
		return
	}
	if got != string(gold) {
		t.Errorf("tarball hashes changed (a compressor or layout change? regenerate with -update if intended):\n%s\nwant:\n%s", got, gold)
	}
}
