package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
)

// progress shows what a command does on stderr: on a terminal, bars redrawn
// in place (crates done/total with bytes, rate and time left; git sources;
// then the command's own phase), drawn by vbauerster/mpb, which keeps
// several bars and the lines printed above them apart while goroutines
// report at once; otherwise (CI logs, Nix builders) plain lines; nothing
// but warnings and errors with --quiet.
//
// Nothing is shown before the first event, so an input error is never
// preceded by a display, and the closing summary is printed only on
// success.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	quiet bool
	phase string // the command's work after fetching ("hashing", …)

	crates, gits  int // totals
	done, gitDone int
	from          map[fetch.Origin]int
	bytes         atomic.Int64 // read by the display without p.mu
	start         time.Time    // set before the display starts

	// terminal only, made at the first event
	bars             *mpb.Progress
	crateBar, gitBar *mpb.Bar
	phaseBar         *mpb.Bar
}

// newProgress reports on w; phase names what the command does once
// everything is fetched.
func newProgress(w io.Writer, phase string, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet, phase: phase, from: map[fetch.Origin]int{}}
	p.tty = isTerminal(w) && !inNixBuilder(os.Getenv) && os.Getenv("TERM") != "dumb"
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// log is where the session's warnings and git's lines go: printed above the
// bars on a terminal, as lines otherwise. --quiet keeps the warnings (a
// tree whose hash differs on macOS, a link dropped from a git crate): they
// are not progress, and they change what the printed hash means.
func (p *progress) log() io.Writer {
	return lineWriter{p: p, warningsOnly: p.quiet}
}

// fetchLog is where the registry downloader logs. Its retry lines come from
// go-retryablehttp ("[ERR] …", "[DEBUG] …"): they are dropped, since a
// retry is shown from its Retrying event and a failure is the error the
// command returns; the downloader's own notes are printed as warnings.
func (p *progress) fetchLog() io.Writer {
	if p.quiet {
		return io.Discard
	}
	return lineWriter{p: p, prefix: "warning: "}
}

type lineWriter struct {
	p            *progress
	prefix       string
	warningsOnly bool // print only the lines that begin "warning: "
}

// Write prints one log entry (a log.Logger writes each in one call).
func (l lineWriter) Write(b []byte) (int, error) {
	entry := strings.TrimRight(string(b), "\n")
	msg := strings.TrimPrefix(entry, "fetch: ")
	if strings.HasPrefix(msg, "[") { // go-retryablehttp's "[ERR]", "[DEBUG]", …
		return len(b), nil
	}
	if l.prefix != "" && msg != entry {
		msg = l.prefix + msg
	}
	if l.warningsOnly && !strings.HasPrefix(msg, "warning: ") {
		return len(b), nil
	}
	l.p.println(msg)
	return len(b), nil
}

func (p *progress) println(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.say(line)
}

// say prints a line above the bars, or plainly; p.mu is held.
func (p *progress) say(line string) {
	if p.bars != nil {
		fmt.Fprintln(p.bars, line)
		return
	}
	fmt.Fprintln(p.w, line)
}

// event takes the downloader's events.
func (p *progress) event(e fetch.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case fetch.Done:
		p.done++
		p.bytes.Add(e.Bytes)
		p.from[e.From]++
		if !p.tty {
			fmt.Fprintf(p.w, "[%d/%d] %s (%s, %s)\n", p.done, p.crates, e.Crate, size(e.Bytes), e.From)
			return
		}
		p.startBars()
		p.crateBar.Increment()
	case fetch.Retrying:
		// The reason's first line: a checksum mismatch's expected and
		// got are said once, in the error if the retry fails too.
		why, _, _ := strings.Cut(fmt.Sprint(e.Err), "\n")
		p.say(fmt.Sprintf("%s: retrying (attempt %d): %s", e.Crate, e.Attempt, why))
	}
	// Failed is not shown: the command's error names every failed crate
	// once, and a crate cancelled by another's failure is not one.
}

// sessionEvent takes the session's events: git sources and the end of
// fetching.
func (p *progress) sessionEvent(e cargohash.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case cargohash.FetchStarted:
		p.crates, p.gits = e.Crates, e.GitSources
	case cargohash.GitStarted:
		if p.tty {
			p.startBars()
		}
	case cargohash.GitDone:
		p.gitDone++
		if !p.tty {
			fmt.Fprintf(p.w, "[git %d/%d] %s\n", p.gitDone, p.gits, e.Git)
			return
		}
		p.startBars()
		p.gitBar.Increment()
	case cargohash.FetchDone:
		if p.phase == "" {
			return
		}
		if !p.tty {
			fmt.Fprintln(p.w, p.phase)
			return
		}
		p.startBars()
		p.phaseBar = p.bars.New(0, mpb.SpinnerStyle(),
			mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(decor.Name(p.phase+" ", decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)))
	}
}

// startBars makes the terminal display at the first event; p.mu is held.
func (p *progress) startBars() {
	if p.bars != nil {
		return
	}
	p.start = time.Now()
	p.bars = mpb.New(mpb.WithOutput(p.w), mpb.WithWidth(32), mpb.WithRefreshRate(100*time.Millisecond), mpb.WithAutoRefresh())
	if p.crates > 0 {
		p.crateBar = p.bars.New(int64(p.crates), mpb.BarStyle().Lbound("[").Rbound("]"),
			mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(
				decor.Name("crates", decor.WCSyncSpaceR),
				decor.CountersNoUnit("%d/%d", decor.WCSyncSpaceR)),
			mpb.AppendDecorators(
				decor.Any(p.rate, decor.WCSyncSpace),
				decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WCSyncSpace), ""),
				decor.OnComplete(decor.Name(" left"), "")))
	}
	if p.gits > 0 {
		p.gitBar = p.bars.New(int64(p.gits), mpb.BarStyle().Lbound("[").Rbound("]"),
			mpb.BarRemoveOnComplete(),
			mpb.PrependDecorators(
				decor.Name("git", decor.WCSyncSpaceR),
				decor.CountersNoUnit("%d/%d", decor.WCSyncSpaceR)))
	}
}

// rate shows the bytes so far and their rate. decor.Any calls it while
// rendering, in mpb's goroutine, which event may be waiting for while it
// holds p.mu: so it must not take p.mu.
func (p *progress) rate(decor.Statistics) string {
	n := p.bytes.Load()
	s := size(n)
	if d := time.Since(p.start).Seconds(); d > 0.5 {
		s += ", " + size(int64(float64(n)/d)) + "/s"
	}
	return s
}

// finish ends the display: on success with a summary of what was fetched
// (a line that tells where the crates came from), on failure without one,
// so that the error is the last thing said.
func (p *progress) finish(ok bool) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	bars := p.bars
	for _, b := range []*mpb.Bar{p.crateBar, p.gitBar, p.phaseBar} {
		if b == nil {
			continue
		}
		if ok {
			b.SetTotal(-1, true)
		} else {
			b.Abort(true)
		}
	}
	p.mu.Unlock()
	if bars != nil {
		bars.Wait()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bars = nil
	if ok && p.crates+p.gits > 0 {
		fmt.Fprintln(p.w, p.summary())
	}
}

// summary is "fetched 232 crates (12.3 MiB): 180 from cache, 52
// downloaded; 1 git source".
func (p *progress) summary() string {
	var parts []string
	for _, o := range []struct {
		from fetch.Origin
		what string
	}{{fetch.FromCache, "from cache"}, {fetch.FromCargoHome, "from CARGO_HOME"}, {fetch.FromMirror, "from file:// mirrors"}, {fetch.FromNetwork, "downloaded"}} {
		if n := p.from[o.from]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o.what))
		}
	}
	var what []string
	if p.crates > 0 {
		s := plural(p.crates, "crate") + " (" + size(p.bytes.Load()) + ")"
		if len(parts) > 0 {
			s += ": " + strings.Join(parts, ", ")
		}
		what = append(what, s)
	}
	if p.gits > 0 {
		what = append(what, plural(p.gits, "git source"))
	}
	return "fetched " + strings.Join(what, "; ")
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
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
