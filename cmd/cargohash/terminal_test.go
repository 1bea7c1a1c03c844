package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

// TestTerminalProgress runs cargohash with stderr on a pseudo-terminal and
// a registry slow enough for the display to be drawn several times: the
// bars are redrawn in place (cursor movement, no line per update) and the
// display ends clean, with the summary as the last line and nothing of the
// bars after it; stdout (a pipe) has the hash alone.
func TestTerminalProgress(t *testing.T) {
	bin := buildCommand(t)
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{Latency: 40 * time.Millisecond})
	var pkgs []lockfile.Package
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"} {
		pkgs = append(pkgs, reg.AddCrate(n, "1.0.0", map[string]string{"src/lib.rs": "// " + n + "\n"}))
	}
	dir := writeProject(t, fetchtest.Lock(pkgs...))

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(tty, &pty.Winsize{Rows: 24, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "prefetch", "--jobs", "1", "--cache-dir", t.TempDir(), dir)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, tty
	cmd.Env = append(os.Environ(), "TERM=xterm-256color", "CARGO_HOME="+t.TempDir(), "NIX_LOG_FD=", "HOME="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var screen bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(&screen, ptmx)
		done <- err
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("prefetch: %v\n%q", err, screen.String())
	}
	// Linux's pty master reads EIO once the last slave is closed.
	if err := <-done; err != nil && !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
	out := screen.String()
	if !regexp.MustCompile(`^sha256-\S+\n$`).MatchString(stdout.String()) {
		t.Errorf("stdout %q, want the hash alone", stdout.String())
	}
	if !strings.Contains(out, "crates") || !strings.Contains(out, "/12") {
		t.Errorf("no crates bar drawn:\n%q", out)
	}
	// mpb redraws by moving the cursor up over its last frame.
	if redraws := regexp.MustCompile("\x1b\\[\\d*A").FindAllStringIndex(out, -1); len(redraws) < 2 {
		t.Errorf("the display was not redrawn in place (%d cursor-up moves):\n%q", len(redraws), out)
	}
	summary := "fetched 12 crates ("
	i := strings.LastIndex(out, summary)
	if i < 0 {
		t.Fatalf("no summary:\n%q", out)
	}
	if tail := out[i:]; !regexp.MustCompile(`^fetched 12 crates \([0-9.]+ [KMi]*B\): 12 downloaded\r\n$`).MatchString(tail) {
		t.Errorf("the display does not end with the summary alone: %q", tail)
	}
	// Every frame fits the terminal: one bar line per frame, no wrapped
	// or piled-up lines.
	for _, line := range strings.Split(out, "\n") {
		if len([]rune(regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]").ReplaceAllString(line, ""))) > 101 {
			t.Errorf("a line wider than the terminal: %q", line)
		}
	}
}
