package fetch

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

// TestTransportConcurrency fetches 300 crates (or 200) from a TLS registry
// the way the session does (DefaultJobs at once) and checks what reached
// the server:
//   - over HTTP/2 one connection, with as many streams at once as the
//     server allows (more requests than the 100 streams Go's client opens
//     before the server's SETTINGS are waiting when the connection is
//     made), and a second when the requests are more than that, also when
//     the server allows fewer than HTTP2Streams;
//   - over HTTP/1.1 at most HTTP1Conns requests at once, and HTTP1Conns
//     connections (one more in all: the one that told the protocol
//     carries the first request and is closed before the Transport dials
//     its last, but the server may see that close a moment later);
//   - with Jobs 2, never more than 2 at once;
//   - when the server resets the HTTP/2 connection mid-run, every crate
//     still arrives, on a second connection.
func TestTransportConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name     string
		http2    bool
		crates   int // 0 for 300
		streams  int // the server's limit, 0 for Go's 250
		jobs     int
		reset    bool
		maxConns int // in all
		maxOpen  int // at once
		atOnce   int // requests at once, at most
	}{
		{name: "http2", http2: true, jobs: DefaultJobs, maxConns: HTTP2Conns, maxOpen: HTTP2Conns, atOnce: 300},
		{name: "http2 fewer crates than streams", http2: true, crates: 200, jobs: DefaultJobs, maxConns: 1, maxOpen: 1, atOnce: 200},
		{name: "http2 server allows 64", http2: true, streams: 64, jobs: DefaultJobs, maxConns: HTTP2Conns, maxOpen: HTTP2Conns, atOnce: HTTP2Conns * 64},
		{name: "http2 reset", http2: true, jobs: DefaultJobs, reset: true, maxConns: HTTP2Conns + 1, maxOpen: HTTP2Conns + 1, atOnce: 300},
		{name: "http1", jobs: DefaultJobs, maxConns: HTTP1Conns + 1, maxOpen: HTTP1Conns + 1, atOnce: HTTP1Conns},
		{name: "http2 jobs 2", http2: true, jobs: 2, maxConns: 1, maxOpen: 1, atOnce: 2},
		{name: "http1 jobs 2", jobs: 2, maxConns: 3, maxOpen: 3, atOnce: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{TLS: true, HTTP2: tc.http2, HTTP2Streams: tc.streams, Latency: 5 * time.Millisecond})
			trustCert(t, reg.CertPEM())
			if tc.crates == 0 {
				tc.crates = 300
			}
			var pkgs []lockfile.Package
			for i := range tc.crates {
				pkgs = append(pkgs, reg.AddCrate(fmt.Sprintf("c%03d", i), "1.0.0", map[string]string{"src/lib.rs": fmt.Sprint(i)}))
			}
			if tc.reset {
				reg.Inject(reg.CratePath("c150", "1.0.0"), fetchtest.Fault{Kind: fetchtest.Reset})
			}
			fetchAll(t, newTestFetcher(t, Options{Jobs: tc.jobs, DL: map[string]string{reg.Source().Raw: reg.DL()}}), tc.jobs, pkgs)
			conns, open, atOnce := reg.Connections()
			if conns > tc.maxConns || open > tc.maxOpen || atOnce > tc.atOnce {
				t.Errorf("%d connections (%d open at once), %d requests at once; want at most %d (%d), %d",
					conns, open, atOnce, tc.maxConns, tc.maxOpen, tc.atOnce)
			}
			if got, want := reg.TotalRequests(), tc.crates; got < want || !tc.reset && got != want {
				t.Errorf("%d requests, want %d", got, want)
			}
		})
	}
}

// TestGateLimits follows a gate through what it learns, in the orders a
// download can tell it: how many turns it has given out after each step,
// with 600 requests waiting.
func TestGateLimits(t *testing.T) {
	type step struct {
		conn    int // learnConn: 1 (HTTP/1.1) or 2 (h2), 0 none
		streams int // streams: what the HTTP/2 connection allows, 0 none
		resp    int // learn: the response's major version, 0 none
		admit   int // turns given out after the step
	}
	for _, tc := range []struct {
		name  string
		jobs  int
		steps []step
	}{
		{"h2", DefaultJobs, []step{{conn: 2, admit: http2EarlyStreams}, {resp: 2, admit: HTTP2Streams}}},
		{"http1", DefaultJobs, []step{{conn: 1, admit: HTTP1Conns}, {resp: 1, admit: HTTP1Conns}}},
		{"response only", DefaultJobs, []step{{resp: 2, admit: HTTP2Streams}}},
		{"second connection ignored", DefaultJobs, []step{{conn: 1, admit: HTTP1Conns}, {conn: 2, admit: HTTP1Conns}}},
		{"connection after response ignored", DefaultJobs, []step{{resp: 1, admit: HTTP1Conns}, {conn: 2, admit: HTTP1Conns}}},
		{"h2 jobs 2", 2, []step{{conn: 2, admit: 2}, {resp: 2, admit: 2}}},
		{"h2 jobs 120", 120, []step{{conn: 2, admit: http2EarlyStreams}, {resp: 2, admit: 120}}},
		{"settings", DefaultJobs, []step{{streams: 100, admit: 100}, {streams: 1000, admit: DefaultJobs}, {resp: 2, admit: DefaultJobs}}},
		{"settings below the cap", DefaultJobs, []step{{streams: 100, admit: 100}, {streams: 256, admit: 256}, {resp: 2, admit: 256}}},
		{"settings jobs 2", 2, []step{{streams: 100, admit: 2}, {streams: 250, admit: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGates(tc.jobs).of(&url.URL{Scheme: "https", Host: "example.org"})
			if err := g.acquire(context.Background()); err != nil {
				t.Fatal(err)
			}
			var turns []chan struct{}
			for range 599 {
				turns = append(turns, make(chan struct{}))
			}
			g.queue = append(g.queue, turns...)
			admitted := func() int {
				n := 1 // the first, which never queued
				for _, c := range turns {
					select {
					case <-c:
						n++
					default:
					}
				}
				return n
			}
			for i, s := range tc.steps {
				if s.conn > 0 {
					g.learnConn(s.conn == 2)
				}
				if s.streams > 0 {
					g.streams(s.streams)
				}
				if s.resp > 0 {
					g.learn(s.resp)
				}
				if got := admitted(); got != s.admit || g.busy != s.admit {
					t.Errorf("step %d (%+v): %d turns given, busy %d; want %d", i, s, got, g.busy, s.admit)
				}
			}
		})
	}
}

// TestGateOpensOnConnection checks that the requests waiting for the first
// one go when its connection is made, not when its response arrives: the
// server holds every response until enough requests are in flight (or 10
// seconds have passed, which fails the test). Over HTTP/1.1 that is two;
// over HTTP/2 it is more than the 100 streams Go's client opens before the
// server's SETTINGS frame, so the rest must go when that frame arrives.
func TestGateOpensOnConnection(t *testing.T) {
	for _, tc := range []struct {
		http2          bool
		crates, needed int
	}{{false, 8, 2}, {true, 200, 150}} {
		t.Run(fmt.Sprintf("http2=%v", tc.http2), func(t *testing.T) {
			files, pkgs := servedCrates(t, tc.crates)
			var mu sync.Mutex
			inFlight, waited := 0, false
			enough := make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				inFlight++
				if inFlight == tc.needed {
					close(enough)
				}
				mu.Unlock()
				select {
				case <-enough:
				case <-time.After(10 * time.Second):
					mu.Lock()
					waited = true
					mu.Unlock()
				}
				w.Write(files[r.URL.Path])
			}))
			srv.EnableHTTP2 = tc.http2
			srv.StartTLS()
			defer srv.Close()
			trustCert(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
			fetchAll(t, newTestFetcher(t, Options{DL: map[string]string{CratesIOAlias: srv.URL + "/{crate}-{version}.crate"}}), DefaultJobs, pkgs)
			if waited {
				t.Errorf("the first response was needed before %d requests were sent", tc.needed)
			}
		})
	}
}

// servedCrates makes n crates.io crates, c0 to c{n-1}, and the files a
// server with the dl template "URL/{crate}-{version}.crate" serves them as.
func servedCrates(t *testing.T, n int) (files map[string][]byte, pkgs []lockfile.Package) {
	t.Helper()
	src, err := lockfile.ParseSource(lockfile.CratesIORegistry)
	if err != nil {
		t.Fatal(err)
	}
	files = map[string][]byte{}
	for i := range n {
		name := fmt.Sprintf("c%d", i)
		data := fetchtest.Crate(name, "1.0.0", map[string]string{"src/lib.rs": name})
		files["/"+name+"-1.0.0.crate"] = data
		pkgs = append(pkgs, lockfile.Package{Name: name, Version: "1.0.0", Source: src, Checksum: fetchtest.Checksum(data)})
	}
	return files, pkgs
}

// TestHTTP2Window checks what an HTTP/2 server can push on one connection
// while nothing reads it: 12 streams of 8 MiB would be 48 MiB under Go's
// per-stream default (4 MiB each), but the connection's window stops the
// server at http2ConnWindow, so unread data held in memory stays bounded
// however many streams are in flight.
func TestHTTP2Window(t *testing.T) {
	const streams, body = 12, 8 << 20
	var sent atomic.Int64
	chunk := make([]byte, 16<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(body))
		for n := 0; n < body; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			sent.Add(int64(len(chunk)))
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	trustCert(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	tr, err := defaultTransport(DefaultJobs, DefaultStallTimeout)
	if err != nil {
		t.Fatal(err)
	}
	conns := newH2Conns(tr) // as a Fetcher sends
	defer conns.CloseIdleConnections()
	client := &http.Client{Transport: conns}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			if resp, err := client.Do(req); err == nil {
				<-ctx.Done() // never read the body
				resp.Body.Close()
			}
		}()
	}
	// Wait (at most 10 s) until the server has been stalled for 300 ms.
	last, still := int64(-1), 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && still < 3; {
		time.Sleep(100 * time.Millisecond)
		if n := sent.Load(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
	cancel()
	wg.Wait()
	// The server's own write buffers and the sockets' hold a little more
	// than the window (up to 4 MiB more, seen with two runs of the tests
	// at once on 2 cores); without the bound it would push 48 MiB here.
	if n := sent.Load(); n > http2ConnWindow*5/4 || n < http2ConnWindow/2 {
		t.Errorf("the server pushed %d MiB on unread streams; want about %d MiB", n>>20, http2ConnWindow>>20)
	}
}

// trustCert makes the fetcher's TLS roots the PEM certificate certPEM (a
// test server's), as a user's NIX_SSL_CERT_FILE and SSL_CERT_FILE would.
func trustCert(t *testing.T, certPEM []byte) {
	t.Helper()
	cert := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(cert, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NIX_SSL_CERT_FILE", cert)
	t.Setenv("SSL_CERT_FILE", cert)
}
