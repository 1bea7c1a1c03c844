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

	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	top := name + "-" + version + "/"
	for _, f := range files {
		hdr := &tar.Header{
			Name:    top + f.Name,
			Mode:    f.Mode,
			ModTime: CrateMTime,
			Format:  tar.FormatGNU,
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
		}
		switch {
		case f.Dir:
			hdr.Typeflag = tar.TypeDir
			hdr.Name = strings.TrimSuffix(hdr.Name, "/") + "/"
			if f.Mode == 0 {
				hdr.Mode = 0o755
			}
		case f.Linkname != "":
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = f.Linkname
			if f.Mode == 0 {
				hdr.Mode = 0o777
			}
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(f.Body))
		}
		// Writes to a bytes.Buffer cannot fail; a header error is a bug in
		// the test's arguments and shows up as a short archive.
		if err := tw.WriteHeader(hdr); err != nil {
			break
		}
		if hdr.Typeflag == tar.TypeReg {
			tw.Write([]byte(f.Body))
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
