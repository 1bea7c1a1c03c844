package vendortree

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/klauspost/compress/gzip"
)

// stageOne writes a staging dir holding one registry crate evil 0.1.0
// with the given .crate bytes (its checksum in the lock matches them).
func stageOne(t *testing.T, crate []byte) string {
	t.Helper()
	dir := t.TempDir()
	sum := sha256.Sum256(crate)
	lock := "version = 4\n\n[[package]]\nname = \"evil\"\nversion = \"0.1.0\"\n" +
		"source = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"" + hex.EncodeToString(sum[:]) + "\"\n"
	mustWrite(t, filepath.Join(dir, "Cargo.lock"), []byte(lock), 0o644)
	mustWrite(t, filepath.Join(dir, "tarballs", "evil-0.1.0.tar.gz"), crate, 0o644)
	return dir
}

// bigHeader is a tarball whose one file declares more than MaxCrateSize
// bytes; the data is never written.
func bigHeader(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	if err := tw.WriteHeader(&tar.Header{Name: "evil-0.1.0/big", Typeflag: tar.TypeReg, Mode: 0o644, Size: MaxCrateSize + 1}); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

func TestHostileTarballs(t *testing.T) {
	p := "evil-0.1.0/"
	ok := fetchtest.FileEntry(p+"Cargo.toml", "[package]\n")
	tests := []struct {
		name    string
		crate   func(t *testing.T) []byte
		wantErr string
	}{
		{"absolute path", entries(ok, fetchtest.FileEntry("/etc/evil", "x")), "absolute path"},
		{"dotdot", entries(ok, fetchtest.FileEntry(p+"../evil", "x")), `".." component`},
		{"dotdot deep", entries(ok, fetchtest.FileEntry(p+"a/../../evil", "x")), `".." component`},
		{"other prefix", entries(ok, fetchtest.FileEntry("other-0.1.0/x", "x")), "outside evil-0.1.0/"},
		{"no prefix", entries(fetchtest.FileEntry("Cargo.toml", "x")), "outside evil-0.1.0/"},
		{"hard link", entries(ok, fetchtest.Entry{Name: p + "h", Type: tar.TypeLink, Linkname: p + "Cargo.toml"}), "hard link"},
		{"char device", entries(ok, fetchtest.Entry{Name: p + "c", Type: tar.TypeChar}), "device"},
		{"block device", entries(ok, fetchtest.Entry{Name: p + "b", Type: tar.TypeBlock}), "device"},
		{"fifo", entries(ok, fetchtest.Entry{Name: p + "f", Type: tar.TypeFifo}), "FIFO"},
		{"absolute symlink", entries(ok, fetchtest.Entry{Name: p + "l", Type: tar.TypeSymlink, Linkname: "/etc/passwd"}), "leaves the crate"},
		{"escaping symlink", entries(ok, fetchtest.Entry{Name: p + "d/l", Type: tar.TypeSymlink, Linkname: "../../x"}), "leaves the crate"},
		{"symlink chain escaping", entries(ok,
			fetchtest.Entry{Name: p + "a", Type: tar.TypeSymlink, Linkname: "."},
			fetchtest.Entry{Name: p + "b", Type: tar.TypeSymlink, Linkname: "a/.."}), "leaves the crate"},
		{"write through symlink", entries(ok,
			fetchtest.Entry{Name: p + "l", Type: tar.TypeSymlink, Linkname: "sub"},
			fetchtest.FileEntry(p+"l/x", "x")), "below symlink"},
		{"too big", bigHeader, "more than"},
		{"not gzip", func(*testing.T) []byte { return []byte("not a tarball") }, "gzip"},
		{"truncated", func(t *testing.T) []byte {
			b := entries(ok, fetchtest.FileEntry(p+"x", strings.Repeat("y", 5000)))(t)
			return b[:len(b)-6]
		}, "unexpected EOF"},
		{"bad gzip checksum", func(t *testing.T) []byte {
			b := entries(ok)(t)
			b[len(b)-8] ^= 0xff // CRC-32 in the trailer, read only when drained
			return b
		}, "checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			staging := stageOne(t, tt.crate(t))
			for _, layout := range []Kind{Nixpkgs, Cargo} {
				parent := t.TempDir()
				out := filepath.Join(parent, "vendor")
				// An earlier tree of the same layout, which a good run would replace.
				crate := filepath.Join(out, "old")
				if layout == Nixpkgs {
					crate = filepath.Join(out, "source-registry", "old-0.1.0")
					mustWrite(t, filepath.Join(out, "Cargo.lock"), []byte("old"), 0o644)
					mustWrite(t, filepath.Join(out, ".cargo", "config.toml"), []byte("old"), 0o644)
				}
				mustWrite(t, filepath.Join(crate, ".cargo-checksum.json"), []byte("{}"), 0o644)
				mustWrite(t, filepath.Join(crate, "keep"), []byte("old"), 0o644)
				stampTree(t, out)
				err := fromStaging(context.Background(), staging, out, Options{Layout: layout})
				if err == nil || !strings.Contains(err.Error(), "evil-0.1.0") || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%v: error %v, want one naming evil-0.1.0 with %q", layout, err, tt.wantErr)
				}
				if b, err := os.ReadFile(filepath.Join(crate, "keep")); err != nil || string(b) != "old" {
					t.Errorf("%v: existing output changed: %q %v", layout, b, err)
				}
				if names := topDirs(t, parent); names != "vendor" {
					t.Errorf("%v: left behind in the parent: %s", layout, names)
				}
			}
		})
	}
}

func entries(es ...fetchtest.Entry) func(t *testing.T) []byte {
	return func(t *testing.T) []byte { return fetchtest.TarGz(es) }
}

func TestChecksumMismatch(t *testing.T) {
	staging := stageOne(t, fetchtest.TarGz([]fetchtest.Entry{fetchtest.FileEntry("evil-0.1.0/Cargo.toml", "x")}))
	// Same length, other bytes: what a tampered staging dir looks like.
	tb := filepath.Join(staging, "tarballs", "evil-0.1.0.tar.gz")
	other := fetchtest.TarGz([]fetchtest.Entry{fetchtest.FileEntry("evil-0.1.0/Cargo.toml", "y")})
	mustWrite(t, tb, other, 0o644)
	out := filepath.Join(t.TempDir(), "vendor")
	err := fromStaging(context.Background(), staging, out, Options{})
	if err == nil || !strings.Contains(err.Error(), "evil-0.1.0: checksum mismatch") {
		t.Fatalf("error %v, want a checksum mismatch naming the crate", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output exists after failure: %v", err)
	}
}

func TestUnpackLimitCountsAllFiles(t *testing.T) {
	p := "c-1.0.0/"
	tb := filepath.Join(t.TempDir(), "c.tar.gz")
	mustWrite(t, tb, fetchtest.TarGz([]fetchtest.Entry{fetchtest.FileEntry(p+"a", strings.Repeat("a", 60)), fetchtest.FileEntry(p+"b", strings.Repeat("b", 60))}), 0o644)
	_, err := unpackCrateTo(context.Background(), tb, "c-1.0.0", filepath.Join(t.TempDir(), "x"), unpackOptions{limit: 100})
	if err == nil || !strings.Contains(err.Error(), "more than 100 bytes") {
		t.Fatalf("error %v, want the size limit", err)
	}
}

func TestUnpackKeepsWhatTarKeeps(t *testing.T) {
	p := "ok-1.0.0/"
	tb := filepath.Join(t.TempDir(), "ok.tar.gz")
	mustWrite(t, tb, fetchtest.TarGz([]fetchtest.Entry{
		{Name: p, Type: tar.TypeDir, Mode: 0o755},
		fetchtest.FileEntry(p+"Cargo.toml", "x"),
		{Name: p + "bin/run", Type: tar.TypeReg, Mode: 0o755, Body: "#!/bin/sh\n"},
		{Name: p + "empty/", Type: tar.TypeDir, Mode: 0o755},
		{Name: p + "link", Type: tar.TypeSymlink, Linkname: "bin/run"},
		{Name: p + "dangling", Type: tar.TypeSymlink, Linkname: "nowhere"},
		fetchtest.FileEntry(p+"dup", "first"),
		fetchtest.FileEntry(p+"dup", "second"),
	}), 0o644)
	dst := filepath.Join(t.TempDir(), "x")
	files, err := unpackCrateTo(context.Background(), tb, "ok-1.0.0", dst, unpackOptions{hash: true})
	if err != nil {
		t.Fatal(err)
	}
	tree := readTree(t, dst)
	if m := tree["bin/run"].Mode; m.Perm() != 0o755 {
		t.Errorf("bin/run mode %v", m)
	}
	if !tree["empty"].Mode.IsDir() {
		t.Errorf("empty dir missing")
	}
	if e := tree["link"]; e.Data != "bin/run" {
		t.Errorf("link: %+v", e)
	}
	if tree["dup"].Data != "second" {
		t.Errorf("dup: %q", tree["dup"].Data)
	}
	if files["link"] != files["bin/run"] || files["link"] == "" {
		t.Errorf("symlink hash %q, target hash %q", files["link"], files["bin/run"])
	}
	if _, ok := files["dangling"]; ok {
		t.Errorf("dangling symlink listed")
	}
}
