package gnutar

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/reftest"
)

// gnuTarFlags are the flags SPEC.md §8 names; the stream is `tar FLAGS -cf - DIR`.
var gnuTarFlags = []string{"--format=gnu", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@1"}

// gnuTar returns the path of GNU tar, the oracle of this package.
func gnuTar(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("tar")
	if err != nil {
		reftest.Missing(t, "GNU tar not in PATH (apt-get install tar)")
	}
	out, err := exec.Command(p, "--version").Output()
	if err != nil || !bytes.Contains(out, []byte("GNU tar")) {
		reftest.Missing(t, "%s is not GNU tar: %q %v", p, firstLine(out), err)
	}
	return p
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// tarEnv is a minimal environment: no TAR_OPTIONS, POSIXLY_CORRECT or locale.
func tarEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "TZ=UTC", "LC_ALL=C"}
}

// tarCommand is GNU tar with the §8 flags archiving top, run in dir.
func tarCommand(t testing.TB, dir, top string) *exec.Cmd {
	args := append(append([]string{}, gnuTarFlags...), "-cf", "-", top)
	cmd := exec.Command(gnuTar(t), args...)
	cmd.Dir = dir
	cmd.Env = tarEnv()
	return cmd
}

// runGNUTar returns GNU tar's stream for dir/top.
func runGNUTar(t testing.TB, dir, top string) []byte {
	t.Helper()
	cmd := tarCommand(t, dir, top)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tar %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, stderr.Bytes())
	}
	return out
}

// normaliseModes chmods a tree as SPEC.md §8 asks before GNU tar reads it:
// directories 0755, files 0755 when any executable bit is set, else 0644.
func normaliseModes(t testing.TB, root string) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			return os.Chmod(p, 0o755)
		case info.Mode().IsRegular() && info.Mode()&0o111 != 0:
			return os.Chmod(p, 0o755)
		case info.Mode().IsRegular():
			return os.Chmod(p, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// headerFields names the byte ranges of a GNU header.
var headerFields = []struct {
	name     string
	from, to int
}{
	{"name", 0, 100}, {"mode", 100, 108}, {"uid", 108, 116}, {"gid", 116, 124},
	{"size", 124, 136}, {"mtime", 136, 148}, {"chksum", 148, 156}, {"typeflag", 156, 157},
	{"linkname", 157, 257}, {"magic", 257, 265}, {"uname", 265, 297}, {"gname", 297, 329},
	{"devmajor", 329, 337}, {"devminor", 337, 345}, {"atime", 345, 357}, {"ctime", 357, 369},
	{"rest", 369, 512},
}

// diffTar says where got first differs from want, walking want's entries to
// name the entry and header field. It returns "" when they are equal.
func diffTar(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	off := 0
	for off < len(got) && off < len(want) && got[off] == want[off] {
		off++
	}
	where := "end-of-archive blocks or record padding"
	for pos, long := 0, ""; pos+blockSize <= len(want); {
		h := want[pos : pos+blockSize]
		if bytes.Equal(h, make([]byte, blockSize)) {
			break
		}
		size, _ := strconv.ParseInt(strings.Trim(string(h[124:136]), "\x00 "), 8, 64)
		name := strings.TrimRight(string(h[0:100]), "\x00")
		if long != "" {
			name = long
		}
		data := pos + blockSize + int(size+blockSize-1)/blockSize*blockSize
		if off < pos+blockSize {
			field := ""
			for _, f := range headerFields {
				if off-pos >= f.from && off-pos < f.to {
					field = f.name
				}
			}
			where = fmt.Sprintf("header of %q (typeflag %q) at %d, field %s", name, h[156], pos, field)
			break
		}
		if off < data {
			where = fmt.Sprintf("data of %q (typeflag %q) at %d", name, h[156], pos)
			break
		}
		long = ""
		if h[156] == 'L' {
			long = strings.TrimRight(string(want[pos+blockSize:pos+blockSize+int(size)]), "\x00")
		}
		pos = data
	}
	return fmt.Sprintf("streams differ at byte %d (got %d bytes, GNU tar %d): %s\n got: %q\nwant: %q",
		off, len(got), len(want), where, excerpt(got, off), excerpt(want, off))
}

func excerpt(b []byte, off int) []byte {
	from, to := max(off-16, 0), min(off+32, len(b))
	if from > to {
		return nil
	}
	return b[from:to]
}
