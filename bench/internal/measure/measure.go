// Package measure times a command and reads its peak memory for the
// benchmarks. The peak comes from GNU time (/usr/bin/time -f %M): the
// rusage Go reports for a child counts the parent's memory too, because
// the child shares it between fork and exec.
package measure

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Run runs cmd (not started yet) under GNU time and returns its wall time
// and peak resident memory in MB.
func Run(cmd *exec.Cmd) (time.Duration, int, error) {
	f, err := os.CreateTemp("", "measure-")
	if err != nil {
		return 0, 0, err
	}
	f.Close()
	defer os.Remove(f.Name())
	cmd.Args = append([]string{"/usr/bin/time", "-f", "%M", "-o", f.Name()}, cmd.Args...)
	cmd.Path = "/usr/bin/time"
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	if err != nil {
		return elapsed, 0, err
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		return elapsed, 0, err
	}
	lines := strings.Fields(string(b))
	if len(lines) == 0 {
		return elapsed, 0, fmt.Errorf("no output from /usr/bin/time")
	}
	kb, err := strconv.Atoi(lines[len(lines)-1])
	return elapsed, kb / 1024, err
}
