//go:build !linux && !darwin

package publish

import (
	"io/fs"
	"time"
)

// changeTime is, where Stat_t's field for the status change time is not
// known here, a file's modification time, which writing its content or
// entries moves too.
func changeTime(fi fs.FileInfo) time.Time { return fi.ModTime() }
