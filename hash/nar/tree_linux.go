package nar

import (
	"encoding/binary"
	"io/fs"
	"slices"
	"strings"
	"syscall"
)

// readDir lists a directory with getdents(2), which gives each entry's type:
// os.ReadDir costs twice the system calls per directory (it also registers
// the directory with the runtime's poller) and an allocation per entry.
func (t *diskTree) readDir(name string) ([]dirEntry, error) {
	fd, err := t.open(name, syscall.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	if t.dirBuf == nil {
		t.dirBuf = make([]byte, 32<<10)
	}
	var es []dirEntry
	for {
		n, err := syscall.Getdents(fd, t.dirBuf)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "readdirent", Path: name, Err: err}
		}
		if n <= 0 {
			break
		}
		// struct linux_dirent64: ino (8 bytes), off (8), reclen (2), type (1), name (NUL-terminated)
		for b := t.dirBuf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return nil, &fs.PathError{Op: "readdirent", Path: name, Err: syscall.EIO}
			}
			rec := b[19:reclen]
			typ := b[18]
			b = b[reclen:]
			if i := slices.Index(rec, 0); i >= 0 {
				rec = rec[:i]
			}
			if len(rec) == 0 || string(rec) == "." || string(rec) == ".." {
				continue
			}
			e := dirEntry{name: string(rec)}
			switch typ {
			case syscall.DT_REG:
			case syscall.DT_DIR:
				e.typ = fs.ModeDir
			case syscall.DT_LNK:
				e.typ = fs.ModeSymlink
			case syscall.DT_FIFO:
				e.typ = fs.ModeNamedPipe
			case syscall.DT_SOCK:
				e.typ = fs.ModeSocket
			case syscall.DT_CHR:
				e.typ = fs.ModeDevice | fs.ModeCharDevice
			case syscall.DT_BLK:
				e.typ = fs.ModeDevice
			default: // DT_UNKNOWN: the file system does not say
				fi, err := t.Lstat(join(name, e.name))
				if err != nil {
					return nil, err
				}
				e.typ = fi.Mode().Type()
			}
			es = append(es, e)
		}
	}
	slices.SortFunc(es, func(a, b dirEntry) int { return strings.Compare(a.name, b.name) })
	return es, nil
}
