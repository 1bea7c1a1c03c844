package gnutar

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"unicode/utf8"
)

// WriteFS writes the tree of fsys under the top directory prefix, in the
// order and with the modes of
//
//	tar --format=gnu --sort=name --owner=0 --group=0 --numeric-owner \
//	    --mtime=@1 -cf - PREFIX
//
// run where PREFIX names the root of fsys: the entry "PREFIX/" first, then
// depth first, each directory's entries sorted by name bytewise, a directory
// before its children. It does not close tw.
//
// Symbolic links are archived as links (read with fs.ReadLink: fsys must
// implement fs.ReadLinkFS, as os.DirFS does), never followed; the root of
// fsys itself is what fsys makes of it. Regular files are read streaming and
// must keep the size they had when listed. A file with several hard links is
// archived in full at each name, which is GNU tar's --hard-dereference: on a
// tree with hard links plain GNU tar writes link entries instead, so trees
// meant to match it byte for byte should hold none. Named pipes, sockets, devices and
// other irregular files are an error naming their path in fsys, and so are
// names that are not valid UTF-8 (fs.FS cannot open them; GNU tar would
// archive them as bytes, and the Writer can).
func WriteFS(ctx context.Context, tw *Writer, fsys fs.FS, prefix string) error {
	if !validPath(prefix) {
		return fmt.Errorf("gnutar: invalid top directory %q", prefix)
	}
	info, err := fs.Stat(fsys, ".")
	if err != nil {
		return err
	}
	if !info.IsDir() {
		return &fs.PathError{Op: "archive", Path: ".", Err: fmt.Errorf("not a directory")}
	}
	wk := walker{tw: tw, fsys: fsys, buf: make([]byte, 32<<10)}
	return wk.dir(ctx, ".", prefix)
}

type walker struct {
	tw   *Writer
	fsys fs.FS
	buf  []byte
}

// dir writes the directory name of fsys as arch, then its entries.
func (wk *walker) dir(ctx context.Context, name, arch string) error {
	if err := wk.tw.WriteHeader(&Header{Name: arch, Typeflag: TypeDir}); err != nil {
		return err
	}
	entries, err := fs.ReadDir(wk.fsys, name)
	if err != nil {
		return err
	}
	// fs.ReadDir promises sorted entries, but only by convention of each FS.
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		child := path.Join(name, e.Name())
		if !utf8.ValidString(e.Name()) {
			return &fs.PathError{Op: "archive", Path: child, Err: fmt.Errorf("name is not valid UTF-8, which fs.FS cannot open")}
		}
		archChild := arch + "/" + e.Name()
		switch typ := e.Type(); typ {
		case fs.ModeDir:
			err = wk.dir(ctx, child, archChild)
		case fs.ModeSymlink:
			err = wk.symlink(child, archChild)
		case 0:
			err = wk.file(e, child, archChild)
		default:
			err = &fs.PathError{Op: "archive", Path: child, Err: fmt.Errorf("unsupported file type: %s", kind(typ))}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (wk *walker) symlink(name, arch string) error {
	target, err := fs.ReadLink(wk.fsys, name)
	if err != nil {
		return err
	}
	return wk.tw.WriteHeader(&Header{Name: arch, Typeflag: TypeSymlink, Linkname: target})
}

func (wk *walker) file(e fs.DirEntry, name, arch string) error {
	info, err := e.Info()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() { // changed since the directory was read
		return &fs.PathError{Op: "archive", Path: name, Err: fmt.Errorf("unsupported file type: %s", kind(info.Mode().Type()))}
	}
	f, err := wk.fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	size := info.Size()
	hdr := &Header{Name: arch, Typeflag: TypeReg, Mode: int64(info.Mode().Perm()), Size: size}
	if err := wk.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyBuffer(wk.tw, io.LimitReader(f, size), wk.buf)
	if err != nil {
		if wk.tw.err != nil { // the archive side failed: report it as it is
			return err
		}
		return &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if n < size {
		return &fs.PathError{Op: "archive", Path: name, Err: fmt.Errorf("file shrank from %d to %d bytes while being read", size, n)}
	}
	if m, _ := f.Read(wk.buf[:1]); m > 0 {
		return &fs.PathError{Op: "archive", Path: name, Err: fmt.Errorf("file grew beyond %d bytes while being read", size)}
	}
	return f.Close()
}

func kind(typ fs.FileMode) string {
	switch {
	case typ&fs.ModeNamedPipe != 0:
		return "named pipe"
	case typ&fs.ModeSocket != 0:
		return "socket"
	case typ&fs.ModeCharDevice != 0:
		return "character device"
	case typ&fs.ModeDevice != 0:
		return "block device"
	}
	return "irregular file (" + typ.String() + ")"
}
