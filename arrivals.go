package cargohash

import (
	"context"

	"github.com/cargohash/cargohash/fetch"
)

// arrivals lets the staging NAR be hashed while Fetch still downloads. The
// NAR lists the tree in name order (git trees, then tarballs), so the hasher
// takes each entry as soon as it and every entry before it are on disk, and
// what remains when the last download ends is the little that arrived last.
// A nil *arrivals is a Fetch nobody follows: its methods do nothing.
type arrivals struct {
	// checkAsRead lets Fetch hand over cached crates without reading
	// them: the hasher, which reads each crate anyway, checks its sha256
	// in that same read (a warm prefetch reads every crate once).
	checkAsRead bool
	// tree, if set, is a staging tree being written: the hasher copies
	// each crate into it as it hashes it.
	tree    string
	planned chan struct{} // closed when fetched is set
	fetched *Fetched
	crates  []chan struct{} // closed when fetched.Crates[i] is on disk
	git     []chan struct{} // closed when fetched.Git[i] is checked out
}

func newArrivals(checkAsRead bool) *arrivals {
	return &arrivals{planned: make(chan struct{}), checkAsRead: checkAsRead}
}

// handover is how a fetch the hasher follows takes crates: into and from
// packs (see fetch.Packed), and, with checkAsRead, cached ones unread.
func (a *arrivals) handover() fetch.Handover {
	if a != nil && a.checkAsRead {
		return fetch.Packed | fetch.Unread
	}
	return fetch.Packed
}

func (a *arrivals) copyTo() string {
	if a == nil {
		return ""
	}
	return a.tree
}

// plan publishes what Fetch will fetch, before anything is fetched.
func (a *arrivals) plan(f *Fetched) {
	if a == nil {
		return
	}
	a.crates = makeSignals(len(f.Crates))
	a.git = makeSignals(len(f.Git))
	a.fetched = f
	close(a.planned)
}

func makeSignals(n int) []chan struct{} {
	s := make([]chan struct{}, n)
	for i := range s {
		s[i] = make(chan struct{})
	}
	return s
}

func (a *arrivals) crate(i int) {
	if a != nil {
		close(a.crates[i])
	}
}

func (a *arrivals) gitTree(i int) {
	if a != nil {
		close(a.git[i])
	}
}

// waitPlan returns the Fetched that Fetch fills in.
func (a *arrivals) waitPlan(ctx context.Context) (*Fetched, error) {
	if err := wait(ctx, a.planned); err != nil {
		return nil, err
	}
	return a.fetched, nil
}

func (a *arrivals) waitCrate(ctx context.Context, i int) error {
	if a == nil {
		return ctx.Err() // all on disk: only stop when asked to
	}
	return wait(ctx, a.crates[i])
}

func (a *arrivals) waitGit(ctx context.Context, i int) error {
	if a == nil {
		return nil
	}
	return wait(ctx, a.git[i])
}

func wait(ctx context.Context, c <-chan struct{}) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
