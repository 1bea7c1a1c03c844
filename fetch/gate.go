package fetch

import (
	"context"
	"crypto/tls"
	"net/http/httptrace"
	"net/url"
	"sync"
)

// How many downloads are on the network at once is chosen per host by what
// its connection speaks, not by one number (see Options.Jobs for the cap):
//
//   - The first request to a host goes alone until its connection is made:
//     it dials, negotiates TLS and ALPN, and the handshake says the
//     protocol. Sending the others at the same time would dial a
//     connection each before any of them knows that one would do. The
//     others go as soon as the connection is there, not after the first
//     response: that would cost a round trip.
//   - Over HTTP/2, HTTP2Streams requests are in flight at once as streams
//     of that one connection, as cargo does with multiplexing, or fewer if
//     the server allows fewer; when more wait, on a second connection
//     too (HTTP2Conns, as cargo). The connections are h2Conns' (h2conn.go),
//     which tells the gate how many streams they allow as soon as the
//     server's SETTINGS frame arrives, right after the handshake (streams);
//     until then, http2EarlyStreams, what Go's HTTP/2 client assumes.
//     Requests beyond what the server allows wait for a stream of those
//     connections rather than dial more, with the stall watchdog stopped.
//     (Through the Transport's own pool, which a Fetcher with
//     Options.Client uses, the gate learns HTTP/2 from the connection
//     (learnConn) and opens to HTTP2Streams with the first response
//     (learn), not to the streams of two connections: Go's pool dials a
//     connection for each request that finds the others full, and 500
//     requests against a server allowing 250 streams made up to 519
//     connections. Not the transport's
//     StrictMaxConcurrentRequests, which would make them wait instead: in
//     Go 1.26 the requests waiting that way count against the limit they
//     wait for, and with more waiting than the limit none ever leaves,
//     each stalled for the watchdog's minute, seen with 1,500 crates.)
//     HTTP2Streams is 250, what Go's own HTTP/2 server allows. 128 was
//     the cap while fresh memory cost a page fault per 4 KiB; since the
//     heap is on huge pages (cmd/cargohash), 256 was 6 % faster on a
//     1,500-crate lock (0.66 vs 0.71 s at 20 ms) for 10 MB more RSS
//     (51 MB). The second connection took that lock from 0.87 to 0.65 s
//     at 100 ms per request, and peak RSS from 47 to 64 MB.
//   - Over HTTP/1.1, HTTP1Conns keep-alive connections; the rest queue here,
//     outside the stall watchdog, which starts only with the request.
//
// file:// mirrors and the caches are not gated: they run as many at once as
// the caller does, at the speed of the disk and the CPU.
const (
	HTTP2Streams = 250
	HTTP2Conns   = 2
	HTTP1Conns   = 16

	// http2EarlyStreams is net/http's initialMaxConcurrentStreams.
	http2EarlyStreams = 100
)

// gates holds one gate per scheme and host.
type gates struct {
	jobs int // Options.Jobs: the cap of every gate
	mu   sync.Mutex
	m    map[string]*gate
}

func newGates(jobs int) *gates {
	return &gates{jobs: jobs, m: map[string]*gate{}}
}

// of returns the gate of u's host.
func (gs *gates) of(u *url.URL) *gate {
	key := u.Scheme + "://" + u.Host
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := gs.m[key]
	if g == nil {
		g = &gate{addr: hostPort(u), limit: 1, jobs: gs.jobs}
		gs.m[key] = g
	}
	return g
}

// gate admits requests to one host: one until a connection tells the
// protocol (learnConn), then as many as that protocol is allowed (for
// HTTP/2 only http2EarlyStreams until a response arrives, learn), in the
// order they came.
type gate struct {
	addr      string // host:port
	jobs      int    // the cap of limit
	mu        sync.Mutex
	connected bool // a connection said the protocol
	known     bool // a response said it
	limit     int
	busy      int
	queue     []chan struct{}
}

// acquire waits for a turn; release it when the download is done.
func (g *gate) acquire(ctx context.Context) error {
	g.mu.Lock()
	if g.busy < g.limit && len(g.queue) == 0 {
		g.busy++
		g.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	g.queue = append(g.queue, turn)
	g.mu.Unlock()
	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	for i, t := range g.queue {
		if t == turn {
			g.queue = append(g.queue[:i], g.queue[i+1:]...)
			g.mu.Unlock()
			return ctx.Err()
		}
	}
	g.mu.Unlock()
	g.release() // the turn came as ctx ended: pass it on
	return ctx.Err()
}

func (g *gate) release() {
	g.mu.Lock()
	g.busy--
	g.admit()
	g.mu.Unlock()
}

// gateKey is the context key of the gate a request went through.
type gateKey struct{}

// trace returns ctx, telling the gate the protocol of the request's
// connection as soon as it has one if no connection has yet: h2Conns finds
// the gate in ctx (and tells it how many streams the server allows, also
// on a connection that replaces the first); the Transport's pool calls
// the trace's GotConn.
func (g *gate) trace(ctx context.Context) context.Context {
	ctx = context.WithValue(ctx, gateKey{}, g)
	g.mu.Lock()
	connected := g.connected
	g.mu.Unlock()
	if connected {
		return ctx
	}
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			c, ok := info.Conn.(interface{ ConnectionState() tls.ConnectionState })
			g.learnConn(ok && c.ConnectionState().NegotiatedProtocol == "h2")
		},
	})
}

// learnConn sets the limit from the protocol a connection negotiated, the
// first time one is made.
func (g *gate) learnConn(h2 bool) {
	g.mu.Lock()
	if !g.connected && !g.known {
		g.connected = true
		g.limit = min(g.jobs, HTTP1Conns)
		if h2 {
			g.limit = min(g.jobs, http2EarlyStreams)
		}
		g.admit()
	}
	g.mu.Unlock()
}

// learn sets the limit from the major HTTP version of a response, the
// first time one arrives, unless the connection said it.
func (g *gate) learn(protoMajor int) {
	g.mu.Lock()
	if !g.known {
		g.known, g.connected = true, true
		g.limit = min(g.jobs, HTTP1Conns)
		if protoMajor >= 2 {
			g.limit = min(g.jobs, HTTP2Streams) // through the Transport's pool (see above)
		}
		g.admit()
	}
	g.mu.Unlock()
}

// streams sets the limit from the number of streams the host's HTTP/2
// connection allows, each time it changes (h2Conns).
func (g *gate) streams(n int) {
	g.mu.Lock()
	g.known, g.connected = true, true
	g.limit = min(g.jobs, n)
	g.admit()
	g.mu.Unlock()
}

// admit hands turns to the queue while the limit allows; g.mu is held.
func (g *gate) admit() {
	for g.busy < g.limit && len(g.queue) > 0 {
		close(g.queue[0])
		g.queue = g.queue[1:]
		g.busy++
	}
}
