package nar

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
)

// Dump writes the NAR serialisation of the file, symlink or directory at
// name on disk to w, like `nix-store --dump name`.
func Dump(w io.Writer, name string) error {
	abs, err := filepath.Abs(name)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(abs); err != nil {
		return err // *fs.PathError names the path
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	nw := NewWriter(bw)
	dir, base := filepath.Split(abs)
	if base == "" { // the file system root
		dir, base = abs, "."
	}
	if err := WriteFS(nw, os.DirFS(dir), base, ""); err != nil {
		return err
	}
	if err := nw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// smallFile is the size up to which WriteFS reads a file ahead of the
// writer, and readAhead how many entries it may be ahead. The memory held is
// at most their product.
const (
	smallFile = 128 << 10
	readAhead = 64
	readers   = 4
)

// node is one entry of the walk, in archive order. Regular files up to
// smallFile bytes are read by a reader goroutine into data before ready is
// closed; larger ones are streamed by the writer.
type node struct {
	name   string // in fsys
	hdr    Header
	data   []byte
	err    error
	ready  chan struct{} // nil when nothing is read ahead
	fsName string
}

// WriteFS writes the tree at name in fsys to nw as the node prefix (prefix ""
// makes it the archive's root). fsys must implement fs.ReadLinkFS if the tree
// holds symlinks (os.DirFS and fstest.MapFS do). Sockets, devices and named
// pipes are refused with an error naming them. While nw hashes or writes,
// small files are read ahead by a few goroutines; files are read exactly once
// and large ones are streamed, never held whole.
func WriteFS(nw *Writer, fsys fs.FS, name, prefix string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	nodes := make(chan *node, readAhead)
	jobs := make(chan *node, readAhead)
	var walkErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(nodes)
		defer close(jobs)
		walkErr = walk(ctx, fsys, name, prefix, nodes, jobs)
	}()
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range jobs {
				n.data, n.err = readSmall(fsys, n.fsName, n.hdr.Size)
				close(n.ready)
			}
		}()
	}
	err := consume(nw, fsys, nodes)
	cancel()
	for range nodes { // let the walker see the cancel and stop
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return walkErr
}

func consume(nw *Writer, fsys fs.FS, nodes <-chan *node) error {
	for n := range nodes {
		if n.ready != nil {
			<-n.ready
			if n.err != nil {
				return n.err
			}
		}
		if err := nw.WriteHeader(&n.hdr); err != nil {
			return err
		}
		if !n.hdr.Mode.IsRegular() {
			continue
		}
		if n.ready != nil {
			if _, err := nw.Write(n.data); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(nw, fsys, n.fsName, n.hdr.Size); err != nil {
			return err
		}
	}
	return nil
}

func walk(ctx context.Context, fsys fs.FS, name, archivePath string, nodes, jobs chan<- *node) error {
	fi, err := fs.Lstat(fsys, name)
	if err != nil {
		return err
	}
	n := &node{fsName: name, hdr: Header{Path: archivePath, Mode: fi.Mode()}}
	switch {
	case fi.Mode().IsRegular():
		n.hdr.Size = fi.Size()
		if fi.Size() <= smallFile {
			n.ready = make(chan struct{})
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		if n.hdr.LinkTarget, err = fs.ReadLink(fsys, name); err != nil {
			return err
		}
	case fi.IsDir():
	default:
		return &fs.PathError{Op: "nar", Path: name, Err: fmt.Errorf("unsupported file type %v (only regular files, directories and symlinks fit in a NAR)", fi.Mode().Type())}
	}
	select {
	case nodes <- n:
	case <-ctx.Done():
		return ctx.Err()
	}
	if n.ready != nil {
		select {
		case jobs <- n:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !fi.IsDir() {
		return nil
	}
	entries, err := fs.ReadDir(fsys, name) // sorted by name, bytewise
	if err != nil {
		return err
	}
	for _, e := range entries {
		child := e.Name()
		if archivePath != "" {
			child = archivePath + "/" + child
		}
		if err := walk(ctx, fsys, path.Join(name, e.Name()), child, nodes, jobs); err != nil {
			return err
		}
	}
	return nil
}

func readSmall(fsys fs.FS, name string, size int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, size+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if int64(n) != size {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("file changed size while being archived (%d bytes, then %d)", size, n)}
	}
	return buf[:n], nil
}

func copyFile(nw *Writer, fsys fs.FS, name string, size int64) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(nw, f)
	if err != nil {
		return &fs.PathError{Op: "read", Path: name, Err: err}
	}
	if n != size {
		return &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("file changed size while being archived (%d bytes, then %d)", size, n)}
	}
	return nil
}
