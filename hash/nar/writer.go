// Package nar writes Nix ARchives, the serialisation `nix-store --dump`
// prints and whose sha256 is a store path's NAR hash (and so a
// fetchCargoVendor cargoHash).
//
// The bytes are exactly these (str(s) is s's length as a little-endian
// uint64, then s, then zero padding to a multiple of 8 bytes):
//
//	nar       = str("nix-archive-1") node
//	node      = str("(") str("type") body str(")")
//	regular   = str("regular") [str("executable") str("")] str("contents") str(contents)
//	symlink   = str("symlink") str("target") str(target)
//	directory = str("directory") { str("entry") str("(") str("name") str(name) str("node") node str(")") }
//
// with directory entries sorted by name bytewise. Only the executable bit of a
// regular file is recorded: no times, owners or other modes. A shell
// equivalent of Dump is `nix-store --dump PATH`.
//
// Writer builds an archive from a stream of headers, like archive/tar; Dump
// and WriteFS serialise a directory tree. The package does not read NARs.
package nar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// ErrWriteTooLong is returned by Write when more bytes are written than the
// current header's Size.
var ErrWriteTooLong = errors.New("nar: write too long")

// Header describes one node of the archive.
type Header struct {
	// Path is the node's slash-separated path relative to the archive's
	// root; "" is the root itself. Nodes must come in depth-first order
	// with each directory's entries sorted bytewise, as Dump emits them.
	Path string
	// Mode's type bits choose the node type: fs.ModeDir, fs.ModeSymlink,
	// or none for a regular file, which is executable when its owner's
	// execute bit (0o100) is set, as Nix has it (S_IXUSR); a group's or
	// others' alone does not count. Other bits are ignored.
	Mode fs.FileMode
	// Size is the length of a regular file's contents.
	Size int64
	// LinkTarget is a symlink's target, recorded verbatim.
	LinkTarget string
}

// Writer writes a NAR. Call WriteHeader for each node, then Write the
// contents of each regular file, then Close. Errors are sticky: after one,
// every call returns it.
type Writer struct {
	w       io.Writer
	err     error
	started bool
	closed  bool
	// dirs holds the paths of the open directories, outermost first.
	dirs []string
	// last holds, per open directory, the name of its latest entry.
	last []string
	// remaining is what is still to be written of the current file;
	// pad is the padding that then follows it.
	remaining int64
	pad       int
	inFile    bool
	fileRoot  bool // the current file is the root node
	rootDone  bool
	scratch   [80]byte
}

// NewWriter returns a Writer writing to w. Writes to w are many and small:
// give it a buffered writer or a hash.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) str(s string) {
	if w.err != nil {
		return
	}
	if len(s) <= len(w.scratch)-16 { // the common, short token: one write
		n := 8 + (len(s)+7)&^7
		b := w.scratch[:n]
		clear(b[n-8:]) // the padding
		binary.LittleEndian.PutUint64(b, uint64(len(s)))
		copy(b[8:], s)
		_, w.err = w.w.Write(b)
		return
	}
	binary.LittleEndian.PutUint64(w.scratch[:8], uint64(len(s)))
	if _, err := w.w.Write(w.scratch[:8]); err != nil {
		w.err = err
		return
	}
	if _, err := io.WriteString(w.w, s); err != nil {
		w.err = err
		return
	}
	w.padding(len(s))
}

var zeros [8]byte

func (w *Writer) padding(n int) {
	if p := (8 - n%8) % 8; p > 0 && w.err == nil {
		_, w.err = w.w.Write(zeros[:p])
	}
}

// endFile finishes the current regular file, if any.
func (w *Writer) endFile() {
	if !w.inFile || w.err != nil {
		return
	}
	if w.remaining > 0 {
		w.fail(fmt.Errorf("nar: file is %d bytes short of its header's Size", w.remaining))
		return
	}
	if w.pad > 0 {
		_, w.err = w.w.Write(zeros[:w.pad])
	}
	w.inFile = false
	w.closeNode(w.fileRoot)
}

// closeNode ends a file or symlink node: its ")" and, unless it is the root,
// its directory entry's ")".
func (w *Writer) closeNode(root bool) {
	w.str(")")
	if !root {
		w.str(")")
	}
}

// popTo closes open directories until the innermost is parent.
func (w *Writer) popTo(parent string) bool {
	for len(w.dirs) > 0 && w.dirs[len(w.dirs)-1] != parent {
		w.dirs = w.dirs[:len(w.dirs)-1]
		w.last = w.last[:len(w.last)-1]
		w.str(")") // the directory node
		w.str(")") // its entry
	}
	return len(w.dirs) > 0
}

// WriteHeader starts the node h describes, ending the previous one.
func (w *Writer) WriteHeader(h *Header) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return w.fail(errors.New("nar: WriteHeader after Close"))
	}
	w.endFile()
	if w.err != nil {
		return w.err
	}
	if !w.started {
		if h.Path != "" {
			return w.fail(fmt.Errorf("nar: first header is %q, want the root \"\"", h.Path))
		}
		w.started = true
		w.str("nix-archive-1")
	} else {
		if w.rootDone && len(w.dirs) == 0 {
			return w.fail(fmt.Errorf("nar: %q after the root node was complete", h.Path))
		}
		parent, name := "", h.Path
		if i := strings.LastIndexByte(h.Path, '/'); i >= 0 {
			parent, name = h.Path[:i], h.Path[i+1:]
		}
		if name == "" || name == "." || name == ".." || strings.IndexByte(name, 0) >= 0 {
			return w.fail(fmt.Errorf("nar: invalid entry name in %q", h.Path))
		}
		if !w.popTo(parent) {
			return w.fail(fmt.Errorf("nar: %q is not inside an open directory (headers out of order?)", h.Path))
		}
		if last := w.last[len(w.last)-1]; last != "" && name <= last {
			return w.fail(fmt.Errorf("nar: %q after %q: entries must be sorted bytewise and unique", name, last))
		}
		w.last[len(w.last)-1] = name
		w.str("entry")
		w.str("(")
		w.str("name")
		w.str(name)
		w.str("node")
	}
	w.str("(")
	w.str("type")
	switch {
	case h.Mode.IsDir():
		w.str("directory")
		w.dirs = append(w.dirs, h.Path)
		w.last = append(w.last, "")
	case h.Mode&fs.ModeSymlink != 0:
		w.str("symlink")
		w.str("target")
		w.str(h.LinkTarget)
		w.closeNode(h.Path == "")
	case h.Mode.IsRegular():
		if h.Size < 0 {
			return w.fail(fmt.Errorf("nar: %q: negative size", h.Path))
		}
		w.str("regular")
		if h.Mode&0o100 != 0 {
			w.str("executable")
			w.str("")
		}
		w.str("contents")
		binary.LittleEndian.PutUint64(w.scratch[:8], uint64(h.Size))
		if w.err == nil {
			_, w.err = w.w.Write(w.scratch[:8])
		}
		w.inFile, w.fileRoot, w.remaining, w.pad = true, h.Path == "", h.Size, int((8-h.Size%8)%8)
	default:
		return w.fail(fmt.Errorf("nar: %q: unsupported file type %v", h.Path, h.Mode.Type()))
	}
	w.rootDone = true
	return w.err
}

// Write writes contents of the current regular file.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if !w.inFile {
		return 0, w.fail(errors.New("nar: Write outside a regular file"))
	}
	tooLong := false
	if int64(len(p)) > w.remaining {
		p, tooLong = p[:w.remaining], true
	}
	n, err := w.w.Write(p)
	w.remaining -= int64(n)
	if err != nil {
		return n, w.fail(err)
	}
	if tooLong {
		return n, ErrWriteTooLong
	}
	return n, nil
}

// ReadFrom copies a regular file's contents from r, up to its Size; it lets
// io.Copy skip an intermediate buffer when the destination can take one.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.err != nil {
		return 0, w.err
	}
	if !w.inFile {
		return 0, w.fail(errors.New("nar: Write outside a regular file"))
	}
	n, err := io.Copy(struct{ io.Writer }{w.w}, io.LimitReader(r, w.remaining))
	w.remaining -= n
	if err != nil {
		return n, w.fail(err)
	}
	return n, nil
}

// Close ends the archive. It does not close the underlying writer.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if w.err != nil {
		return w.err
	}
	if !w.started {
		return w.fail(errors.New("nar: Close before the root header"))
	}
	w.endFile()
	w.popTo("")
	if len(w.dirs) == 1 { // the root directory
		w.dirs, w.last = nil, nil
		w.str(")")
	}
	w.closed = true
	return w.err
}
