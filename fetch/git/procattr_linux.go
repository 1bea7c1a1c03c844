package git

import "syscall"

// sysProcAttr puts a git process in a process group of its own and kills
// it when cargohash dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
