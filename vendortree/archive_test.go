package vendortree

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/fetchtest"
)

// TestUnpackArchiveHostile: a source archive gets the crate rules, except
// that hard links are copies and links out are kept.
func TestUnpackArchiveHostile(t *testing.T) {
	ok := fetchtest.FileEntry("p/Cargo.toml", "[package]\n")
	tests := []struct {
		name    string
		data    func(t *testing.T) []byte
		wantErr string
	}{
		{"absolute path", entries(ok, fetchtest.FileEntry("/etc/evil", "x")), "absolute path"},
		{"dotdot", entries(ok, fetchtest.FileEntry("p/../../evil", "x")), `".." component`},
		{"char device", entries(ok, fetchtest.Entry{Name: "p/c", Type: tar.TypeChar}), "device"},
		{"fifo", entries(ok, fetchtest.Entry{Name: "p/f", Type: tar.TypeFifo}), "FIFO"},
		{"below symlink", entries(fetchtest.Entry{Name: "p/l", Type: tar.TypeSymlink, Linkname: "/tmp"}, fetchtest.FileEntry("p/l/evil", "x")), "below symlink"},
		{"hard link out", entries(ok, fetchtest.Entry{Name: "p/h", Type: tar.TypeLink, Linkname: "/etc/passwd"}), "outside the archive"},
		{"hard link up", entries(ok, fetchtest.Entry{Name: "p/h", Type: tar.TypeLink, Linkname: "../x"}), "outside the archive"},
		{"hard link forward", entries(fetchtest.Entry{Name: "p/h", Type: tar.TypeLink, Linkname: "p/later"}, fetchtest.FileEntry("p/later", "x")), "not a file written before it"},
		{"hard link to symlink", entries(fetchtest.Entry{Name: "p/s", Type: tar.TypeSymlink, Linkname: "/etc/passwd"}, fetchtest.Entry{Name: "p/h", Type: tar.TypeLink, Linkname: "p/s"}), "not a file written before it"},
		{"html", func(*testing.T) []byte { return []byte("\n<!DOCTYPE html>\n<html></html>") }, "an HTML page"},
		{"garbage", func(*testing.T) []byte { return []byte("not an archive at all") }, "not a tar"},
		{"zip size lie", func(t *testing.T) []byte { return zipLying(t) }, "not a valid zip file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "a")
			mustWrite(t, file, tc.data(t), 0o644)
			err := UnpackArchive(context.Background(), file, filepath.Join(t.TempDir(), "out"), 0)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)

			}
		})
	}
}

// zipLying is a zip whose one file holds more bytes than its directory
// declares.
func zipLying(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "p/x", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("0123456789"))
	zw.Close()
	b := buf.Bytes()
	// The central directory's uncompressed size (offset 24 of its entry)
	// says 2 bytes.
	i := bytes.LastIndex(b, []byte("PK\x01\x02"))
	b[i+24] = 2
	return b
}

// TestUnpackArchiveShapes: what is kept, and how.
func TestUnpackArchiveShapes(t *testing.T) {
	data := fetchtest.TarGz([]fetchtest.Entry{
		{Name: "p/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "p/run", Type: tar.TypeReg, Mode: 0o755, Body: "#!/bin/sh\n"},
		{Name: "p/h", Type: tar.TypeLink, Linkname: "p/run"},
		{Name: "p/abs", Type: tar.TypeSymlink, Linkname: "/etc/passwd"},
		{Name: "p/empty/", Type: tar.TypeDir, Mode: 0o755},
	})
	file := filepath.Join(t.TempDir(), "a.tar.gz")
	mustWrite(t, file, data, 0o644)
	out := filepath.Join(t.TempDir(), "out")
	if err := UnpackArchive(context.Background(), file, out, 0); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(out, "p/h"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o100 == 0 {
		t.Errorf("hard link: %v %v, want an executable regular file", fi, err)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "p/h")); string(got) != "#!/bin/sh\n" {
		t.Errorf("hard link content %q", got)
	}
	if got, err := os.Readlink(filepath.Join(out, "p/abs")); err != nil || got != "/etc/passwd" {
		t.Errorf("symlink out: %q %v, want kept", got, err)
	}
	if fi, err := os.Stat(filepath.Join(out, "p/empty")); err != nil || !fi.IsDir() {
		t.Errorf("empty dir: %v", err)
	}
	var names []string
	fs.WalkDir(os.DirFS(out), ".", func(p string, d fs.DirEntry, err error) error {
		names = append(names, p)
		return nil
	})
	if strings.Join(names, " ") != ". p p/abs p/empty p/h p/run" {
		t.Errorf("tree %v", names)
	}
}
