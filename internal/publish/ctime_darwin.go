package publish

import (
	"io/fs"
	"syscall"
	"time"
)

// changeTime is a file's status change time (content, entries or mode).
func changeTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctimespec.Unix())
	}
	return fi.ModTime()
}
