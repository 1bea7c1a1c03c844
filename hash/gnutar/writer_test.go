package gnutar

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate testdata/small.tar with GNU tar")

var errBroken = errors.New("broken writer")

// failWriter fails its failAt-th write (from 1) and counts every call.
type failWriter struct {
	failAt int
	calls  int
}

func (w *failWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.calls == w.failAt {
		return len(p) / 2, errBroken
	}
	return len(p), nil
}

func TestWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		hdr  Header
	}{
		{"empty name", Header{Typeflag: TypeReg}},
		{"dot", Header{Name: ".", Typeflag: TypeDir}},
		{"absolute", Header{Name: "/etc/passwd", Typeflag: TypeReg}},
		{"dot dot", Header{Name: "a/../b", Typeflag: TypeReg}},
		{"double slash", Header{Name: "a//b", Typeflag: TypeReg}},
		{"trailing slash on a file", Header{Name: "a/", Typeflag: TypeReg}},
		{"two trailing slashes", Header{Name: "a//", Typeflag: TypeDir}},
		{"nul", Header{Name: "a\x00b", Typeflag: TypeReg}},
		{"negative size", Header{Name: "a", Typeflag: TypeReg, Size: -1}},
		{"sized dir", Header{Name: "a", Typeflag: TypeDir, Size: 1}},
		{"sized symlink", Header{Name: "a", Typeflag: TypeSymlink, Size: 1, Linkname: "b"}},
		{"symlink without target", Header{Name: "a", Typeflag: TypeSymlink}},
		{"target with nul", Header{Name: "a", Typeflag: TypeSymlink, Linkname: "b\x00"}},
		{"file with target", Header{Name: "a", Typeflag: TypeReg, Linkname: "b"}},
		{"hard link", Header{Name: "a", Typeflag: '1', Linkname: "b"}},
		{"fifo", Header{Name: "a", Typeflag: '6'}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := NewWriter(&buf)
			err := tw.WriteHeader(&tc.hdr)
			if err == nil {
				t.Fatal("no error")
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written", buf.Len())
			}
			if err2 := tw.Close(); err2 != err {
				t.Errorf("Close = %v, want the sticky %v", err2, err)
			}
		})
	}
}

func TestWriterSizes(t *testing.T) {
	t.Run("too long", func(t *testing.T) {
		var buf bytes.Buffer
		tw := NewWriter(&buf)
		if err := tw.WriteHeader(&Header{Name: "f", Typeflag: TypeReg, Size: 3}); err != nil {
			t.Fatal(err)
		}
		n, err := tw.Write([]byte("abcd"))
		if n != 3 || !errors.Is(err, ErrWriteTooLong) {
			t.Fatalf("Write = %d, %v; want 3, ErrWriteTooLong", n, err)
		}
		if !strings.Contains(err.Error(), "f") {
			t.Errorf("error %q does not name the entry", err)
		}
		before := buf.Len()
		if err := tw.WriteHeader(&Header{Name: "g", Typeflag: TypeReg}); !errors.Is(err, ErrWriteTooLong) {
			t.Errorf("WriteHeader after = %v", err)
		}
		if err := tw.Close(); !errors.Is(err, ErrWriteTooLong) {
			t.Errorf("Close after = %v", err)
		}
		if buf.Len() != before {
			t.Error("wrote after the error")
		}
	})
	t.Run("before any header", func(t *testing.T) {
		if _, err := NewWriter(io.Discard).Write([]byte("x")); !errors.Is(err, ErrWriteTooLong) {
			t.Errorf("Write = %v", err)
		}
	})
	for _, next := range []string{"WriteHeader", "Close"} {
		t.Run("too short then "+next, func(t *testing.T) {
			tw := NewWriter(io.Discard)
			if err := tw.WriteHeader(&Header{Name: "short", Typeflag: TypeReg, Size: 10}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write([]byte("12345")); err != nil {
				t.Fatal(err)
			}
			var err error
			if next == "Close" {
				err = tw.Close()
			} else {
				err = tw.WriteHeader(&Header{Name: "next", Typeflag: TypeReg})
			}
			if err == nil || !strings.Contains(err.Error(), "short") || !strings.Contains(err.Error(), "5 bytes") {
				t.Fatalf("%s = %v, want an error naming short and 5 missing bytes", next, err)
			}
			if _, err2 := tw.Write([]byte("67890")); err2 != err {
				t.Errorf("Write after = %v, want the sticky error", err2)
			}
		})
	}
	t.Run("after close", func(t *testing.T) {
		tw := NewWriter(io.Discard)
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if err := tw.WriteHeader(&Header{Name: "x", Typeflag: TypeReg}); err != ErrWriteAfterClose {
			t.Errorf("WriteHeader after Close = %v", err)
		}
	})
}

// TestWriterStopsAtWriteError fails each write of the underlying writer in
// turn: the error must come back as is and no further write be attempted.
func TestWriterStopsAtWriteError(t *testing.T) {
	write := func(tw *Writer) error {
		for _, h := range []Header{
			{Name: "d", Typeflag: TypeDir},
			{Name: "d/" + rep("x", 200), Typeflag: TypeReg, Size: 700, Mode: 0o755},
			{Name: "d/l", Typeflag: TypeSymlink, Linkname: rep("y", 150)},
		} {
			if err := tw.WriteHeader(&h); err != nil {
				return err
			}
			for range h.Size / 100 {
				if _, err := tw.Write(bytes.Repeat([]byte("z"), 100)); err != nil {
					return err
				}
			}
		}
		return tw.Close()
	}
	var all failWriter
	if err := write(NewWriter(&all)); err != nil {
		t.Fatal(err)
	}
	for fail := 1; fail <= all.calls; fail++ {
		w := &failWriter{failAt: fail}
		if err := write(NewWriter(w)); err != errBroken {
			t.Fatalf("failing write %d: got %v", fail, err)
		}
		if w.calls != fail {
			t.Fatalf("failing write %d: %d writes attempted", fail, w.calls)
		}
	}
	t.Run("short write without error", func(t *testing.T) {
		tw := NewWriter(shortWriter{})
		if err := tw.WriteHeader(&Header{Name: "d", Typeflag: TypeDir}); err != io.ErrShortWrite {
			t.Errorf("WriteHeader = %v", err)
		}
	})
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) - 1, nil }

// TestWriterLargeSize compares the header of a file of 8 GiB - 1 (the
// largest octal size) and of 8 GiB (base-256) with GNU tar's, reading only
// the head of GNU tar's stream of a sparse file.
func TestWriterLargeSize(t *testing.T) {
	gnuTar(t)
	for _, size := range []int64{1<<33 - 1, 1 << 33, 1<<40 + 12345} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			tmp := t.TempDir()
			if err := os.Mkdir(filepath.Join(tmp, "big"), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(filepath.Join(tmp, "big", "sparse"))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(size); err != nil {
				f.Close()
				t.Skipf("sparse file of %d bytes: %v", size, err)
			}
			f.Close()
			if err := os.Chmod(filepath.Join(tmp, "big", "sparse"), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := tarCommand(t, tmp, "big")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			want := make([]byte, 2*blockSize)
			_, err = io.ReadFull(out, want)
			cmd.Process.Kill()
			cmd.Wait()
			if err != nil {
				t.Fatalf("reading GNU tar's stream: %v", err)
			}

			var got bytes.Buffer
			tw := NewWriter(&got)
			if err := tw.WriteHeader(&Header{Name: "big", Typeflag: TypeDir}); err != nil {
				t.Fatal(err)
			}
			if err := tw.WriteHeader(&Header{Name: "big/sparse", Typeflag: TypeReg, Size: size, Mode: 0o644}); err != nil {
				t.Fatal(err)
			}
			if d := diffTar(got.Bytes(), want); d != "" {
				t.Fatalf("size %d: %s", size, d)
			}
			if s := parseSize(got.Bytes()[blockSize+124 : blockSize+136]); s != size {
				t.Errorf("size field reads back as %d", s)
			}
		})
	}
}

// TestGolden compares WriteFS on the small tree with testdata/small.tar,
// which GNU tar wrote (see testdata/README.md). It runs without GNU tar;
// -update regenerates the file with it.
func TestGolden(t *testing.T) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "small-vendor")
	buildTree(t, root, smallTree())
	normaliseModes(t, root)
	golden := filepath.Join("testdata", "small.tar")
	if *update {
		if err := os.WriteFile(golden, runGNUTar(t, tmp, "small-vendor"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	tw := NewWriter(&got)
	if err := WriteFS(t.Context(), tw, os.DirFS(root), "small-vendor"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if d := diffTar(got.Bytes(), want); d != "" {
		t.Fatal(d)
	}
	// archive/tar reads it back too.
	tr := tar.NewReader(bytes.NewReader(got.Bytes()))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("archive/tar: %v", err)
		}
		names = append(names, h.Name)
	}
	if len(names) != len(listStream(t, got.Bytes())) {
		t.Errorf("archive/tar read %d entries: %q", len(names), names)
	}
}

// smallTree is the tree of testdata/small.tar (documented in its README).
func smallTree() []node {
	return []node{
		fileNode("Cargo.lock", 0o644, "version = 4\n"),
		fileNode(".cargo/config.toml", 0o644, "[source.crates-io]\nreplace-with = \"vendored-sources\"\n"),
		fileNode("a/b", 0o644, "a/b\n"),
		fileNode("a-b", 0o644, ""),
		fileNode("a.b", 0o755, "#!/bin/sh\n"),
		dirNode("empty", 0o755),
		linkNode("link", "a/b"),
		fileNode(rep("long-", 22)+"name", 0o644, "a name of 114 bytes in the archive\n"),
		linkNode("long-target", rep("../", 40)+"t"),
	}
}

// FuzzWriter checks that archive/tar reads back any valid name, target and size.
func FuzzWriter(f *testing.F) {
	f.Add("a", "b", uint16(0))
	f.Add(rep("n", 100), rep("t", 100), uint16(512))
	f.Add(rep("n", 101), rep("t", 511), uint16(513))
	f.Add("dir/é file", rep("u", 512), uint16(1))
	f.Fuzz(func(t *testing.T, name, target string, size uint16) {
		var buf bytes.Buffer
		tw := NewWriter(&buf)
		if err := tw.WriteHeader(&Header{Name: name, Typeflag: TypeReg, Size: int64(size), Mode: 0o700}); err != nil {
			return // invalid names are refused
		}
		if _, err := tw.Write(bytes.Repeat([]byte{'x'}, int(size))); err != nil {
			t.Fatal(err)
		}
		if target != "" && tw.WriteHeader(&Header{Name: name + "-l", Typeflag: TypeSymlink, Linkname: target}) != nil {
			return
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.Len()%recordSize != 0 {
			t.Fatalf("stream of %d bytes", buf.Len())
		}
		tr := tar.NewReader(&buf)
		h, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != name || h.Size != int64(size) || h.Mode != 0o755 || h.ModTime.Unix() != 1 || h.Format != tar.FormatGNU {
			t.Fatalf("read back %+v", h)
		}
		if target != "" {
			h, err := tr.Next()
			if err != nil {
				t.Fatal(err)
			}
			if h.Linkname != target || h.Name != name+"-l" {
				t.Fatalf("read back %q -> %q", h.Name, h.Linkname)
			}
		}
		if _, err := tr.Next(); err != io.EOF {
			t.Fatalf("after the entries: %v", err)
		}
	})
}

// TestWriterNonUTF8 writes a name that is not UTF-8 (which WriteFS refuses,
// as fs.FS cannot open it) with the Writer and compares with GNU tar.
func TestWriterNonUTF8(t *testing.T) {
	gnuTar(t)
	tmp := t.TempDir()
	name := "latin1-\xe9"
	if err := os.Mkdir(filepath.Join(tmp, "u"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "u", name), []byte("bytes\n"), 0o644); err != nil {
		t.Skipf("non-UTF-8 name: %v", err)
	}
	if err := os.Chmod(filepath.Join(tmp, "u", name), 0o644); err != nil {
		t.Fatal(err)
	}
	want := runGNUTar(t, tmp, "u")
	var got bytes.Buffer
	tw := NewWriter(&got)
	if err := tw.WriteHeader(&Header{Name: "u/", Typeflag: TypeDir}); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&Header{Name: "u/" + name, Typeflag: TypeReg, Size: 6}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write([]byte("bytes\n")); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if d := diffTar(got.Bytes(), want); d != "" {
		t.Fatal(d)
	}
}
