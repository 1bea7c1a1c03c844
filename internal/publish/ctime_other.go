//go:build !linux && !darwin && !freebsd

package publish

import "syscall"

// statCtime does not know Stat_t's field for the status change time here:
// changeTime falls back to the modification time.
func statCtime(*syscall.Stat_t) (syscall.Timespec, bool) { return syscall.Timespec{}, false }
