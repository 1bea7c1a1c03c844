package git

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"
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

// systemAttributes reports whether git (the binary gitPath) may have a
// system-wide attributes file, which it reads (GIT_ATTR_NOSYSTEM is not
// set): $(sysconfdir)/gitattributes, /etc for distributions' git, or etc/
// beside the bin/ of a git installed under a prefix (Homebrew, Nix, a
// source build), the binary's path followed through symlinks or not.
func systemAttributes(gitPath string) bool {
	v, _ := sysAttrs.LoadOrStore(gitPath, sync.OnceValue(func() bool {
		candidates := []string{"/etc/gitattributes"}
		if p, err := exec.LookPath(gitPath); err == nil {
			candidates = append(candidates, filepath.Join(filepath.Dir(filepath.Dir(p)), "etc", "gitattributes"))
			if r, err := filepath.EvalSymlinks(p); err == nil {
				candidates = append(candidates, filepath.Join(filepath.Dir(filepath.Dir(r)), "etc", "gitattributes"))
			}
		}
		for _, c := range candidates {
			if _, err := os.Stat(c); err == nil {
				return true
			}
		}
		return false
	}))
	return v.(func() bool)()
}

var sysAttrs sync.Map // git binary → func() bool

// treeWriter writes a verified tree into dir (see above). A nil
// treeWriter writes nothing.
type treeWriter struct {
	dir      string
	attrs    bool   // git has system attributes
	why      string // why git must check this tree out; "" while writing
	dirty    bool   // something was written into dir
	made     map[string]bool
	treeName map[string]bool // the names of the tree being read, folded
}

func newTreeWriter(dir, gitPath string) *treeWriter {
	w := &treeWriter{dir: dir, attrs: systemAttributes(gitPath)}
	w.start()
	return w
}

func (w *treeWriter) start() {
	w.why, w.made = "", nil
	if w.attrs {
		w.why = "a system gitattributes file"
	}
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
	w.start()
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

// tree is told that the entries of another tree follow.
func (w *treeWriter) tree() {
	if w.writing() {
		clear(w.treeName)
	}
}

// entry is told of each entry of each tree read, before any blob of that
// tree is written: one that git treats specially stops the writing, and
// so does a name twice in one tree (which git's fsck refuses, and git's
// checkout resolves its own way), also when they differ only in case or,
// where the file system may fold them, beyond ASCII.
func (w *treeWriter) entry(name, mode string) {
	if !w.writing() {
		return
	}
	folded := strings.ToLower(name)
	if w.treeName == nil {
		w.treeName = map[string]bool{}
	}
	if w.treeName[folded] {
		w.stop("the name " + name + " twice in a tree")
		return
	}
	w.treeName[folded] = true
	if runtime.GOOS != "linux" && strings.IndexFunc(name, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0 {
		w.stop("the name " + name + " on a file system that may fold it")
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
	// git refuses .git and its NTFS names anywhere, and symlinks named
	// like .gitmodules (8.3 names included); .gitattributes is read.
	l := strings.ToLower(strings.TrimRight(name, ". "))
	if l == ".git" || l == ".gitattributes" || strings.HasPrefix(l, "git~") ||
		mode == "120000" && (strings.HasPrefix(l, ".git") || strings.HasPrefix(l, "git") || strings.Contains(l, "~")) {
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

// parent makes the directories above path and returns path in dir. A
// directory is made, or found to be one, never followed through a
// symlink: whatever is in the way is an error, which stops the writing.
func (w *treeWriter) parent(path string) (string, error) {
	w.dirty = true
	if w.made == nil {
		w.made = map[string]bool{w.dir: true}
	}
	p := filepath.Join(w.dir, filepath.FromSlash(path))
	var mk func(d string) error
	mk = func(d string) error {
		if w.made[d] {
			return nil
		}
		if err := mk(filepath.Dir(d)); err != nil {
			return err
		}
		if err := os.Mkdir(d, 0o777); err != nil {
			if fi, lerr := os.Lstat(d); lerr != nil || !fi.IsDir() {
				return err
			}
		}
		w.made[d] = true
		return nil
	}
	return p, mk(filepath.Dir(p))
}

// writeBlob writes the blob at path from next (objectSource.nextTo); an
// error of the file system stops the writing, so that git checks the tree
// out and reports it in its words.
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
