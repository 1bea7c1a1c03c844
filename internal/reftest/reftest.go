// Package reftest finds the reference tools (Nix, git, GNU tar, cargo) that
// tests use as oracles. A test that needs a missing tool fails when CI=true
// and is skipped, with the reason, otherwise.
package reftest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Need returns the path of tool, looking in PATH and in ~/.cargo/bin (where
// rustup puts cargo). It fails or skips t when the tool is missing.
func Need(t testing.TB, tool string) string {
	t.Helper()
	if p, err := exec.LookPath(tool); err == nil {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cargo", "bin", tool)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Missing(t, "reference tool %s is not installed", tool)
	return ""
}

// Missing reports a missing prerequisite of a reference test (a tool, a
// package's files, root): it fails t when CI=true, where .ci/run must have
// provided it, and skips t with the reason otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: .ci/run must provide it)", msg)
	}
	t.Skipf("%s; skipping (it is required when CI=true)", msg)
}

// Run runs the command and returns its stdout, failing t with stderr on error.
func Run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr)
	}
	return out
}

// Nix returns the argument prefix for running the `nix` command with the
// nix-command feature enabled: exec.Command(reftest.Nix(t), args...) with
// args starting "--extra-experimental-features", "nix-command".
func Nix(t testing.TB) (path string, prefix []string) {
	return Need(t, "nix"), []string{"--extra-experimental-features", "nix-command"}
}

// PrefetchUnpack is `nix-prefetch-url --unpack file://PATH` (the fetchzip
// hash of an archive) in SRI form.
func PrefetchUnpack(t testing.TB, path string) string {
	t.Helper()
	base32 := strings.TrimSpace(string(Run(t, Need(t, "nix-prefetch-url"), "--unpack", "file://"+path)))
	nix, feat := Nix(t)
	return strings.TrimSpace(string(Run(t, nix, append(feat, "hash", "to-sri", "--type", "sha256", base32)...)))
}

// LinesWith returns the lines of log that contain s, in order (nil if
// none): the notes a test expects a run to have logged.
func LinesWith(log, s string) []string {
	var lines []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			lines = append(lines, l)
		}
	}
	return lines
}
