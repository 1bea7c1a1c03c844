package fetch

import "io"

// EventKind says what an Event reports.
type EventKind int

const (
	// Started: the crate is not in the cache and is being fetched.
	Started EventKind = iota
	// Progress: Bytes of Size (-1 if unknown) have been received.
	Progress
	// Retrying: attempt number Attempt (≥ 2) starts because the previous
	// one failed with Err; Bytes restarts from 0.
	Retrying
	// Done: the crate is verified and stored; From says where it came from.
	Done
	// Failed: Crate returns Err.
	Failed
)

// Origin says where a crate came from.
type Origin string

const (
	FromCache     Origin = "cache"
	FromCargoHome Origin = "cargo-home"
	FromMirror    Origin = "mirror"
	FromNetwork   Origin = "network"
)

// Event is a progress report for the command line's display.
type Event struct {
	Kind  EventKind
	Crate string // NAME@VERSION
	From  Origin // Done only
	Bytes int64  // received so far (Progress), total (Done)
	Size  int64  // announced size, -1 if unknown
	Err   error  // Retrying, Failed
	// Attempt is the number of the attempt starting (Retrying only).
	Attempt int
}

func (f *Fetcher) emit(e Event) {
	if f.opts.Progress != nil {
		f.opts.Progress(e)
	}
}

// progressWriter reports the running byte count after each write.
type progressWriter struct {
	w  io.Writer
	n  int64
	fn func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	p.fn(p.n)
	return n, err
}
