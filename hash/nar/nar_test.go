package nar

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/cargohash/cargohash/internal/reftest"
)

func TestDumpMatchesNixStore(t *testing.T) {
	nixStore := reftest.Need(t, "nix-store")
	root := t.TempDir()
	tree := filepath.Join(root, "tree")
	reftest.MakeTree(t, tree)
	// Nix records a file as executable by its owner's execute bit alone.
	modes := filepath.Join(root, "modes")
	for _, m := range []fs.FileMode{0o654, 0o645, 0o744, 0o611, 0o700, 0o100, 0o600} {
		p := filepath.Join(modes, fmt.Sprintf("%04o", m))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("mode\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, m); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]string{
		"file modes":    modes,
		"directory":     tree,
		"regular file":  filepath.Join(tree, "a"),
		"executable":    filepath.Join(tree, "run.sh"),
		"empty file":    filepath.Join(tree, "empty-file"),
		"big file":      filepath.Join(tree, "big"),
		"symlink":       filepath.Join(tree, "link-rel"),
		"dangling link": filepath.Join(tree, "link-dangling"),
		"empty dir":     filepath.Join(tree, "empty-dir"),
	}
	for name, p := range cases {
		t.Run(name, func(t *testing.T) {
			want := reftest.Run(t, nixStore, "--dump", p)
			var got bytes.Buffer
			if err := Dump(t.Context(), &got, p); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("Dump differs from nix-store --dump at byte %d (got %d bytes, want %d)", firstDiff(got.Bytes(), want), got.Len(), len(want))
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestWriteFSMapFS(t *testing.T) {
	// The same tree, in memory and on disk, gives the same archive.
	fsys := fstest.MapFS{
		"x/b":       {Data: []byte("b")},
		"x/a/c":     {Data: []byte("c"), Mode: 0o755},
		"x/a-b":     {Data: nil},
		"x/link":    {Data: []byte("a/c"), Mode: fs.ModeSymlink},
		"x/empty":   {Mode: fs.ModeDir | 0o755},
		"x/a.b/c/d": {Data: []byte("deep")},
	}
	var mem bytes.Buffer
	nw := NewWriter(&mem)
	if err := WriteFS(t.Context(), nw, fsys, "x", ""); err != nil {
		t.Fatal(err)
	}
	if err := nw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, fsys); err != nil {
		t.Fatal(err)
	}
	var disk bytes.Buffer
	if err := Dump(t.Context(), &disk, filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mem.Bytes(), disk.Bytes()) {
		t.Fatalf("MapFS and disk archives differ at byte %d", firstDiff(mem.Bytes(), disk.Bytes()))
	}
}

func TestWriterErrors(t *testing.T) {
	file := func(p string, size int64) *Header { return &Header{Path: p, Size: size} }
	dir := func(p string) *Header { return &Header{Path: p, Mode: fs.ModeDir} }
	tests := []struct {
		name    string
		headers []*Header
		want    string
	}{
		{"first not root", []*Header{file("a", 0)}, "want the root"},
		{"unsorted", []*Header{dir(""), file("b", 0), file("a", 0)}, "sorted"},
		{"duplicate", []*Header{dir(""), file("a", 0), file("a", 0)}, "sorted"},
		{"not in open dir", []*Header{dir(""), file("a", 0), file("a/b", 0)}, "not inside an open directory"},
		{"after root file", []*Header{file("", 0), file("a", 0)}, "after the root"},
		{"short file", []*Header{dir(""), file("a", 3), file("b", 0)}, "short"},
		{"bad name", []*Header{dir(""), file("..", 0)}, "invalid entry name"},
		{"device", []*Header{{Path: "", Mode: fs.ModeDevice}}, "unsupported file type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWriter(new(bytes.Buffer))
			var err error
			for _, h := range tt.headers {
				if err = w.WriteHeader(h); err != nil {
					break
				}
			}
			if err == nil {
				err = w.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if err2 := w.WriteHeader(dir("zzz")); err2 != err { // sticky
				t.Fatalf("after an error, WriteHeader returned %v, want the same %v", err2, err)
			}
		})
	}
}

func TestWriteTooLong(t *testing.T) {
	w := NewWriter(new(bytes.Buffer))
	if err := w.WriteHeader(&Header{Size: 2}); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write([]byte("abc")); n != 2 || err != ErrWriteTooLong {
		t.Fatalf("Write = %d, %v; want 2, ErrWriteTooLong", n, err)
	}
}

type failWriter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errDisk
	}
	f.n--
	return len(p), nil
}

func TestWriterStopsAtFirstWriteError(t *testing.T) {
	fw := &failWriter{n: 5}
	w := NewWriter(fw)
	w.WriteHeader(&Header{Mode: fs.ModeDir})
	w.WriteHeader(&Header{Path: "a", Size: 1})
	w.Write([]byte("x"))
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Fatalf("Close = %v, want %v", err, errDisk)
	}
	if fw.n != 0 {
		t.Fatalf("writer did not reach the failing write")
	}
}

func TestDumpRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := exec.Command("mkfifo", fifo).Run(); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	err := Dump(t.Context(), new(bytes.Buffer), dir)
	if err == nil || !strings.Contains(err.Error(), "fifo") || !strings.Contains(err.Error(), "unsupported file type") {
		t.Fatalf("Dump of a tree with a FIFO: %v", err)
	}
	if err := Dump(t.Context(), new(bytes.Buffer), filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Dump of a missing path: %v", err)
	}
}

// unreadableFS fails to open one file, as an unreadable file would for a
// user other than root (the tests run as root, who reads everything).
type unreadableFS struct {
	fstest.MapFS
	bad string
}

func (u unreadableFS) Open(name string) (fs.File, error) {
	if name == u.bad {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return u.MapFS.Open(name)
}

func (u unreadableFS) ReadLink(name string) (string, error)   { return u.MapFS.ReadLink(name) }
func (u unreadableFS) Lstat(name string) (fs.FileInfo, error) { return u.MapFS.Lstat(name) }

func TestWriteFSUnreadableFile(t *testing.T) {
	for _, size := range []int{3, 3 * blockSize} { // within a block, and across blocks
		fsys := unreadableFS{fstest.MapFS{"d/ok": {Data: []byte("ok")}, "d/secret": {Data: make([]byte, size)}}, "d/secret"}
		err := WriteFS(t.Context(), NewWriter(new(bytes.Buffer)), fsys, "d", "")
		if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "d/secret") {
			t.Fatalf("size %d: error = %v, want permission denied naming d/secret", size, err)
		}
	}
}

// TestWriteFSWalkError: a walk that fails while earlier files are being
// read ahead returns the walk's error (and does not hang).
func TestWriteFSWalkError(t *testing.T) {
	fsys := fstest.MapFS{"d/a": {Data: []byte("a")}, "d/b": {Data: []byte("b")}, "d/c/fifo": {Mode: fs.ModeNamedPipe}}
	err := WriteFS(t.Context(), NewWriter(new(bytes.Buffer)), fsys, "d", "")
	if err == nil || !strings.Contains(err.Error(), "unsupported file type") {
		t.Fatalf("WriteFS = %v, want the FIFO's error", err)
	}
}

// TestWriteFSWriterError: when the destination fails mid-tree, the walk
// stops, the destination's error is returned and stays sticky.
func TestWriteFSWriterError(t *testing.T) {
	fsys := fstest.MapFS{}
	for i := range 64 {
		fsys[fmt.Sprintf("d/%02d", i)] = &fstest.MapFile{Data: bytes.Repeat([]byte{byte(i)}, blockSize/3)}
	}
	fw := &failWriter{n: 2}
	nw := NewWriter(fw)
	if err := WriteFS(t.Context(), nw, fsys, "d", ""); !errors.Is(err, errDisk) {
		t.Fatalf("WriteFS = %v, want %v", err, errDisk)
	}
	if err := nw.Close(); !errors.Is(err, errDisk) {
		t.Fatalf("Close after the failed WriteFS = %v, want %v", err, errDisk)
	}
}

// badDirFS fails to list one directory.
type badDirFS struct {
	fstest.MapFS
	bad string
}

func (b badDirFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name == b.bad {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrPermission}
	}
	return b.MapFS.ReadDir(name)
}

// TestWriteFSListError: directories are listed ahead of the walk; a listing
// that fails deep in the tree, after many files and directories, is the
// error returned, and the walk ends.
func TestWriteFSListError(t *testing.T) {
	fsys := fstest.MapFS{}
	for i := range 200 {
		fsys[fmt.Sprintf("d/%03d/f", i)] = &fstest.MapFile{Data: []byte{byte(i)}}
	}
	fsys["d/150/sub/f"] = &fstest.MapFile{}
	err := WriteFS(t.Context(), NewWriter(new(bytes.Buffer)), badDirFS{fsys, "d/150/sub"}, "d", "")
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "d/150/sub") {
		t.Fatalf("WriteFS = %v, want the listing error of d/150/sub", err)
	}
}

// hugeFS holds one file, "big", of size zero bytes (no disk needed), whose reader calls
// cancel once it has served at cancelAt bytes and counts what it serves.
type hugeFS struct {
	size, cancelAt int64
	cancel         func()
	served         *int64
}

func (h hugeFS) Open(name string) (fs.File, error) {
	if name != "big" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &hugeFile{h: h}, nil
}

func (h hugeFS) Lstat(name string) (fs.FileInfo, error) {
	f, err := h.Open(name)
	if err != nil {
		return nil, err
	}
	return f.Stat()
}

func (h hugeFS) ReadLink(name string) (string, error) {
	return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
}

type hugeFile struct{ h hugeFS }

func (f *hugeFile) Stat() (fs.FileInfo, error) { return hugeInfo(f.h.size), nil }

type hugeInfo int64

func (i hugeInfo) Name() string       { return "big" }
func (i hugeInfo) Size() int64        { return int64(i) }
func (i hugeInfo) Mode() fs.FileMode  { return 0o644 }
func (i hugeInfo) ModTime() time.Time { return time.Time{} }
func (i hugeInfo) IsDir() bool        { return false }
func (i hugeInfo) Sys() any           { return nil }
func (f *hugeFile) Close() error      { return nil }
func (f *hugeFile) Read(b []byte) (int, error) {
	n := int64(len(b))
	if left := f.h.size - *f.h.served; n > left {
		n = left
	}
	if n == 0 {
		return 0, io.EOF
	}
	clear(b[:n])
	*f.h.served += n
	if *f.h.served >= f.h.cancelAt {
		f.h.cancel()
	}
	return int(n), nil
}

// TestWriteFSCancel: cancelling the context while a huge file is being
// hashed stops the walk within a few blocks, with ctx's error.
func TestWriteFSCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var served int64
	const size, cancelAt = 64 << 30, 1 << 20
	fsys := hugeFS{size: size, cancelAt: cancelAt, cancel: cancel, served: &served}
	err := WriteFS(ctx, NewWriter(sha256.New()), fsys, "big", "")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("WriteFS = %v, want context.Canceled", err)
	}
	if limit := int64(cancelAt + (blocks+2)*blockSize); served > limit {
		t.Errorf("read %d bytes of the file after cancelling at %d; want at most %d", served, cancelAt, limit)
	}
	// Already cancelled: nothing is read.
	served = 0
	if err := WriteFS(ctx, NewWriter(io.Discard), fsys, "big", ""); !errors.Is(err, context.Canceled) || served != 0 {
		t.Errorf("WriteFS with a cancelled context = %v after %d bytes, want context.Canceled after none", err, served)
	}
}
