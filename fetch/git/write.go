package git

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// A checkout without git.
//
// `git checkout` of a commit into a new repository writes each blob of the
// tree at its path: a file of mode 0666 or, for 100755, 0777 (less the
// umask), a symlink for 120000, an empty directory for a gitlink;
// directories as their files need them. That is all it does when nothing
// asks for more: no attributes (.gitattributes in the tree, a system
// gitattributes file; the configuration is isolated and the repository
// new, so there are no others), no submodules (their configuration is
// read with git, from the checkout), and no path git would refuse or treat
// specially. treeWriter writes such a tree as verify reads and checks it,
// so that a checkout costs no git process but the one that reads the
// objects; for any other tree it stops, says why, and the caller clears
// what it wrote and runs git checkout.

// systemAttributes is git's system-wide attributes file on Debian-like
// systems (GIT_ATTR_NOSYSTEM is not set for git, so git would read it).
var systemAttributes = sync.OnceValue(func() bool {
	_, err := os.Lstat("/etc/gitattributes")
	return err == nil
})

// treeWriter writes a verified tree into dir (see above). A nil
// treeWriter writes nothing.
type treeWriter struct {
	dir   string
	why   string // why git must check this tree out; "" while writing
	dirty bool   // something was written into dir
	made  map[string]bool
}

func newTreeWriter(dir string) *treeWriter {
	w := &treeWriter{dir: dir}
	if systemAttributes() {
		w.why = "a system gitattributes file"
	}
	return w
}

func (w *treeWriter) writing() bool { return w != nil && w.why == "" }

func (w *treeWriter) stop(why string) {
	if w.writing() {
		w.why = why
	}
}

// reset removes what was written and starts again.
func (w *treeWriter) reset() error {
	if w == nil {
		return nil
	}
	w.why, w.made = "", nil
	if systemAttributes() {
		w.why = "a system gitattributes file"
	}
	if !w.dirty {
		return nil
	}
	w.dirty = false
	ents, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(w.dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// entry is told of each entry of each tree read, before any blob of that
// tree is written: one that git treats specially stops the writing.
func (w *treeWriter) entry(name, mode string) {
	if !w.writing() {
		return
	}
	switch mode {
	case "100644", "100755", "120000", "40000", "040000":
	case "160000":
		w.stop("submodules")
		return
	default:
		w.stop("mode " + mode)
		return
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\:\x00") {
		w.stop("the name " + name)
		return
	}
	l := strings.ToLower(strings.TrimRight(name, ". "))
	if l == ".git" || l == ".gitattributes" || strings.HasPrefix(l, "git~") ||
		mode == "120000" && strings.HasPrefix(l, ".git") {
		w.stop("the name " + name)
	}
}

// create opens the file for the blob at path (slash-separated, relative)
// of mode; for a symlink it returns nil and link makes it.
func (w *treeWriter) create(path, mode string) (*os.File, error) {
	p, err := w.parent(path)
	if err != nil {
		return nil, err
	}
	perm := os.FileMode(0o666)
	if mode == "100755" {
		perm = 0o777
	}
	return os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
}

// link makes the symlink at path.
func (w *treeWriter) link(path string, target []byte) error {
	p, err := w.parent(path)
	if err != nil {
		return err
	}
	return os.Symlink(string(target), p)
}

// parent makes the directories above path and returns path in dir.
func (w *treeWriter) parent(path string) (string, error) {
	w.dirty = true
	p := filepath.Join(w.dir, filepath.FromSlash(path))
	if d := filepath.Dir(p); !w.made[d] {
		if err := os.MkdirAll(d, 0o777); err != nil {
			return "", err
		}
		if w.made == nil {
			w.made = map[string]bool{}
		}
		w.made[d] = true
	}
	return p, nil
}

// writeBlob writes the blob at path from next (objectReader.next's
// writer form); an error of the file system stops the writing, so that git
// checks the tree out and reports it in its words.
func (w *treeWriter) writeBlob(path, mode string, next func(keep bool, dst io.Writer) ([]byte, error)) error {
	if mode == "120000" {
		target, err := next(true, nil)
		if err == nil && w.writing() {
			if lerr := w.link(path, target); lerr != nil {
				w.stop(lerr.Error())
			}
		}
		return err
	}
	f, ferr := w.create(path, mode)
	if ferr != nil {
		w.stop(ferr.Error())
		_, err := next(false, nil)
		return err
	}
	sw := &stickyWriter{w: f}
	_, err := next(false, sw)
	if cerr := f.Close(); sw.err == nil {
		sw.err = cerr
	}
	if sw.err != nil {
		w.stop(sw.err.Error())
	}
	return err
}

// stickyWriter keeps the first error of w and drops what follows it, so
// that the object stream it is fed from is still read to the end.
type stickyWriter struct {
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	if s.err == nil {
		_, s.err = s.w.Write(p)
	}
	return len(p), nil
}
