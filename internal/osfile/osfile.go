// Package osfile opens regular files without Go's network poller.
//
// os.OpenFile tries to register every file it opens with the runtime's
// network poller, so that reads of a pipe or a terminal park a goroutine
// instead of a thread. For a regular file the registration is refused, and
// the attempt costs five syscalls (fcntl four times and an epoll_ctl that
// fails). cargohash opens files by the hundred (each crate of a prefetch
// twice: written into the cache, read back into the hash), so it opens
// them here: one openat, and the one fcntl os.NewFile makes to learn that
// the descriptor blocks.
//
// Only for regular files: a FIFO opened here blocks its thread, not just
// its goroutine, and O_NONBLOCK must not be passed.
package osfile

import (
	"errors"
	"os"
	"syscall"
)

// Open opens the file name for reading.
func Open(name string) (*os.File, error) {
	return OpenFile(name, os.O_RDONLY, 0)
}

// OpenFile is os.OpenFile (close-on-exec, perm's permission bits only)
// without the poller.
func OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	for {
		fd, err := syscall.Open(name, flag|syscall.O_CLOEXEC, uint32(perm.Perm()))
		if errors.Is(err, syscall.EINTR) {
			continue // as os.OpenFile does: a signal interrupted a slow file system
		} else if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return os.NewFile(uintptr(fd), name), nil
	}
}
