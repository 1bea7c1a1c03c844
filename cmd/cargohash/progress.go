package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cargohash/cargohash/fetch"
)

// progress shows fetch events on stderr: one redrawn status line on a
// terminal, plain lines otherwise (CI logs, Nix builders), nothing when quiet.
// A hand-written line is enough here: a progress-bar library would add a
// dependency for one line of output.
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	quiet    bool
	total    int
	done     int
	bytes    int64
	last     time.Time
	lastLine int
}

func newProgress(w io.Writer, total int, quiet bool) *progress {
	p := &progress{w: w, total: total, quiet: quiet}
	if f, ok := w.(*os.File); ok && !inNixBuilder(os.Getenv) {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb" {
			p.tty = true
		}
	}
	return p
}

// log is where the session's warnings and git lines go.
func (p *progress) log() io.Writer {
	if p.quiet {
		return io.Discard
	}
	return lineWriter{p}
}

type lineWriter struct{ p *progress }

func (l lineWriter) Write(b []byte) (int, error) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	l.p.clear()
	return l.p.w.Write(b)
}

func (p *progress) event(e fetch.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case fetch.Done:
		p.done++
		p.bytes += e.Bytes
		if !p.tty {
			fmt.Fprintf(p.w, "[%d/%d] %s (%s, %s)\n", p.done, p.total, e.Crate, size(e.Bytes), e.From)
			return
		}
	case fetch.Retrying:
		p.clear()
		fmt.Fprintf(p.w, "retrying %s: %v\n", e.Crate, e.Err)
	case fetch.Failed:
		p.clear()
		fmt.Fprintf(p.w, "failed %s: %v\n", e.Crate, e.Err)
	}
	if p.tty && (time.Since(p.last) > 100*time.Millisecond || p.done == p.total) {
		p.last = time.Now()
		p.clear()
		line := fmt.Sprintf("fetching crates: %d/%d, %s", p.done, p.total, size(p.bytes))
		p.lastLine = len(line)
		fmt.Fprint(p.w, line)
	}
}

// clear erases the status line (terminal only).
func (p *progress) clear() {
	if p.tty && p.lastLine > 0 {
		fmt.Fprintf(p.w, "\r%*s\r", p.lastLine, "")
		p.lastLine = 0
	}
}

// finish ends the status line with a summary.
func (p *progress) finish() {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	if p.total > 0 {
		fmt.Fprintf(p.w, "fetched %d/%d crates, %s\n", p.done, p.total, size(p.bytes))
	}
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
