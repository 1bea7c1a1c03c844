//go:build darwin || freebsd

package publish

import "syscall"

// statCtime is a file's status change time (content, entries or mode).
func statCtime(st *syscall.Stat_t) (syscall.Timespec, bool) { return st.Ctimespec, true }
