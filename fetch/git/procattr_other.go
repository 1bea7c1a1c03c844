//go:build !linux

package git

import "syscall"

// sysProcAttr puts a git process in a process group of its own. Only
// Linux has a parent-death signal: elsewhere a git outliving a killed
// cargohash finishes on its own, and the cache's checks catch what it
// leaves half-written.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
