package publish

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cargohash/cargohash/internal/osfile"
)

// Temporary names. Everything cargohash writes beside a destination while
// it works is named ".BASE.cargohash-KIND-RANDOM" (KIND: tmp for the
// content being written, old for a replaced tree on its way out, or the
// caller's word) and is locked (flock) by the process using it for as long
// as it does. A process killed by SIGKILL or a power cut leaves its
// temporary names behind, unlocked; the next write into the same directory
// removes them (sweep). A name is removed only if it has this exact form,
// nobody holds its lock and it is older than sweepAge, the moments between
// making a name and locking it.

// sweepAge is how old an unlocked temporary name must be to be removed.
var sweepAge = 10 * time.Second

// swept holds the directories swept by this process: once each is enough,
// a process's own temporary names being locked.
var swept sync.Map

// tempPattern is the os.CreateTemp pattern of a temporary name beside
// path: ".BASE.cargohash-KIND-*".
func tempPattern(path, kind string) string {
	return "." + filepath.Base(path) + ".cargohash-" + kind + "-*"
}

// IsTemp reports whether name (a base name) is one of the temporary names
// this package makes beside a destination.
// Its form is ".BASE.cargohash-KIND-DIGITS", BASE not empty, KIND of
// lower-case letters (no regexp: compiling one at init costs every run
// 0.7 ms).
func IsTemp(name string) bool {
	i := strings.LastIndex(name, ".cargohash-")
	if i < 2 || name[0] != '.' {
		return false
	}
	kind, digits, ok := strings.Cut(name[i+len(".cargohash-"):], "-")
	return ok && kind != "" && digits != "" &&
		strings.Trim(kind, "abcdefghijklmnopqrstuvwxyz") == "" && strings.Trim(digits, "0123456789") == ""
}

// TempDir makes a temporary directory beside path (".BASE.cargohash-KIND-RANDOM",
// mode 0700) for work that must stay on path's file system, locked for
// this process until release is called; remove it before releasing it.
// Leftovers of killed processes in that directory are removed first.
func TempDir(path, kind string) (dir string, release func(), err error) {
	path = filepath.Clean(path)
	parent := filepath.Dir(path)
	sweep(parent)
	dir, err = os.MkdirTemp(parent, tempPattern(path, kind))
	if err != nil {
		return "", nil, err
	}
	lock, err := lockTemp(dir)
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	return dir, func() { lock.Close() }, nil
}

// createTemp is os.CreateTemp beside path (opened without the network
// poller: see osfile), the file locked while it is open.
func createTemp(path string) (*os.File, error) {
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	sweep(dir)
	prefix, _, _ := strings.Cut(tempPattern(path, "tmp"), "*")
	for try := 0; ; try++ {
		f, err := osfile.OpenFile(filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) && try < 10000 {
			continue
		} else if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
		return f, nil
	}
}

// lockTemp opens the temporary name p and takes its lock, waiting for a
// sweeper that is only looking at it.
func lockTemp(p string) (*os.File, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// sweep removes, once per process and directory, the temporary names in
// dir that no process holds and that are older than sweepAge. It is best
// effort: what cannot be read, locked or removed stays.
func sweep(dir string) {
	if _, done := swept.LoadOrStore(dir, true); done {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !IsTemp(e.Name()) || e.Type()&os.ModeSymlink != 0 {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil && stale(f) {
			os.RemoveAll(p)
		}
		f.Close()
	}
}

// stale reports whether the open temporary name f has not changed for
// sweepAge (its status change time: content, entries or mode).
func stale(f *os.File) bool {
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	return time.Since(changeTime(fi)) >= sweepAge
}

// changeTime is fi's status change time where this system's Stat_t is
// known (statCtime), else its modification time, which writing its
// content or entries moves too.
func changeTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if ts, ok := statCtime(st); ok {
			return time.Unix(ts.Unix())
		}
	}
	return fi.ModTime()
}

// A Temp is a file written over a longer time than one call of File (a
// cache pack, filled as downloads finish): a temporary name beside its
// destination, locked while open, so that a killed process's leftover is
// swept like any other. Commit renames it into place; Abort removes it.
type Temp struct {
	*os.File
	dst string
}

// CreateTemp creates the temporary file of dst, open for reading and
// writing.
func CreateTemp(dst string) (*Temp, error) {
	abs, err := filepath.Abs(dst)
	if err != nil {
		return nil, err
	}
	f, err := createTemp(abs)
	if err != nil {
		return nil, err
	}
	return &Temp{File: f, dst: abs}, nil
}

// Commit gives the file mode perm and renames it to its destination
// (then closes it: renamed while still locked, so no sweeper can take it),
// without a sync (for caches, which verify what they read). On error the
// temporary file is removed.
func (t *Temp) Commit(perm fs.FileMode) error {
	err := t.Chmod(perm)
	if err == nil {
		err = os.Rename(t.Name(), t.dst)
	}
	if err != nil {
		os.Remove(t.Name())
	}
	if cerr := t.Close(); err == nil {
		err = cerr
	}
	return err
}

// CommitNew is Commit to dst, a name in the directory of the destination
// the file was created for, when only its content tells the name (a
// known lock is named after the cargoHash computed while it was written).
// Anything already at dst is left as it is and the temporary file removed
// instead: dst names its content. Like Commit, no sync.
//
// The file is linked to dst, which fails where anything is, then its
// temporary name removed: a check followed by a rename would replace what
// another process put at dst in between. Only on a file system without
// hard links is it that check and rename.
func (t *Temp) CommitNew(dst string, perm fs.FileMode) error {
	abs, err := filepath.Abs(dst)
	if err == nil && filepath.Dir(abs) != filepath.Dir(t.dst) {
		err = fmt.Errorf("publish: %s is not in the directory of %s", dst, t.dst)
	}
	if err == nil {
		err = t.Chmod(perm)
	}
	if err != nil {
		t.Abort()
		return err
	}
	switch err := os.Link(t.Name(), abs); {
	case err == nil, errors.Is(err, fs.ErrExist):
		// dst is this file now, or already names its content: the
		// temporary name goes.
		t.Abort()
		return nil
	case errors.Is(err, fs.ErrPermission), errors.Is(err, errors.ErrUnsupported):
		// No hard links here (EPERM, ENOTSUP).
		if _, err := os.Lstat(abs); err == nil {
			t.Abort()
			return nil
		}
		t.dst = abs
		return t.Commit(perm)
	default:
		t.Abort()
		return err
	}
}

// Abort removes and closes the temporary file.
func (t *Temp) Abort() {
	os.Remove(t.Name())
	t.Close()
}
