// Package fetchtest provides test doubles for package fetch and its users: a
// loopback sparse registry with fault injection, deterministic .crate files,
// Cargo.lock text for them, and file:// mirrors.
//
// Everything here is for tests and demos: servers listen on 127.0.0.1 only.
package fetchtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// CrateMTime is the modification time of every entry in the crates built
// here, the fixed time `cargo package` writes (2006-07-24 01:21:28 UTC).
var CrateMTime = time.Unix(1153704088, 0).UTC()

// File is one entry of a crate built by CrateFiles.
type File struct {
	Name     string // path inside the crate, without the NAME-VERSION/ prefix
	Body     string
	Mode     int64  // 0 means 0644
	Linkname string // set: a symlink to Linkname
	Dir      bool   // a directory entry (Body ignored)
}

// Crate builds a .crate file: a gzip-compressed tar whose entries all lie
// under NAME-VERSION/, as `cargo package` writes them. Cargo.toml is added
// when files has none, and src/lib.rs when files is empty. The bytes are a
// function of the arguments only (for one Go version's compress/gzip).
func Crate(name, version string, files map[string]string) []byte {
	list := make([]File, 0, len(files))
	for p, body := range files {
		list = append(list, File{Name: p, Body: body})
	}
	return CrateFiles(name, version, list)
}

// CrateFiles is Crate with modes, symlinks and directories. Entries are
// written in path order.
func CrateFiles(name, version string, files []File) []byte {
	files = append([]File(nil), files...)
	has := func(p string) bool {
		for _, f := range files {
			if f.Name == p {
				return true
			}
		}
		return false
	}
	if len(files) == 0 {
		files = append(files, File{Name: "src/lib.rs", Body: "//! " + name + "\n"})
	}
	if !has("Cargo.toml") {
		files = append(files, File{Name: "Cargo.toml", Body: Manifest(name, version)})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	top := name + "-" + version + "/"
	entries := make([]Entry, 0, len(files))
	for _, f := range files {
		e := Entry{Name: top + f.Name, Type: tar.TypeReg, Mode: f.Mode, Body: f.Body}
		switch {
		case f.Dir:
			e = Entry{Name: strings.TrimSuffix(e.Name, "/") + "/", Type: tar.TypeDir, Mode: f.Mode}
			if f.Mode == 0 {
				e.Mode = 0o755
			}
		case f.Linkname != "":
			e = Entry{Name: e.Name, Type: tar.TypeSymlink, Mode: f.Mode, Linkname: f.Linkname}
			if f.Mode == 0 {
				e.Mode = 0o777
			}
		}
		entries = append(entries, e)
	}
	return TarGz(entries)
}

// Entry is one raw entry of a tarball a test builds by hand, malformed
// crates included: Name is the whole name (the NAME-VERSION/ prefix, or
// anything else), Type a tar type flag.
type Entry struct {
	Name     string
	Type     byte
	Mode     int64 // 0 means 0644
	Body     string
	Linkname string
}

// FileEntry is the regular file name holding body, mode 0644.
func FileEntry(name, body string) Entry {
	return Entry{Name: name, Type: tar.TypeReg, Mode: 0o644, Body: body}
}

// TarGz writes entries, in the order given, as a gzip'd GNU tar with every
// time CrateMTime: the test world's one tar builder (CrateFiles uses it).
// The bytes are a function of the entries only (for one Go version's
// compress/gzip). An entry archive/tar refuses is a bug in the test: it
// panics.
func TarGz(entries []Entry) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Linkname: e.Linkname, ModTime: CrateMTime, Format: tar.FormatGNU}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		if e.Type == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(fmt.Sprintf("fetchtest.TarGz: %s: %v", e.Name, err))
		}
		if hdr.Size > 0 {
			tw.Write([]byte(e.Body)) // to a bytes.Buffer: cannot fail
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// Manifest is a minimal Cargo.toml for a library crate.
func Manifest(name, version string) string {
	return fmt.Sprintf("[package]\nname = %q\nversion = %q\nedition = \"2021\"\n", name, version)
}

// Checksum is the lowercase hex sha256 of data, as Cargo.lock writes it.
func Checksum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// FilesFromDir lists the regular files under dir (a Debian librust-*-dev
// crate source, say) as crate files with their permissions, in path order;
// debian/, .git* and the top .cargo-checksum.json are left out.
func FilesFromDir(dir string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "debian" || rel == ".cargo-checksum.json" || strings.HasPrefix(rel, ".git") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, File{Name: filepath.ToSlash(rel), Body: string(body), Mode: int64(info.Mode().Perm())})
		return nil
	})
	return files, err
}
