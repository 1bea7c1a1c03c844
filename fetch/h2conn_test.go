package fetch

import (
	"context"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

// TestH2ConnsProxy sends a Fetcher's requests to a TLS registry through an
// HTTP proxy (CONNECT), as HTTPS_PROXY does: the connection h2Conns makes
// itself goes through the proxy too. Over HTTP/2 that is one tunnel; over
// HTTP/1.1 the first connection and the Transport's.
func TestH2ConnsProxy(t *testing.T) {
	for _, http2 := range []bool{true, false} {
		t.Run(fmt.Sprintf("http2=%v", http2), func(t *testing.T) {
			reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{TLS: true, HTTP2: http2})
			trustCert(t, reg.CertPEM())
			var pkgs []lockfile.Package
			for i := range 40 {
				pkgs = append(pkgs, reg.AddCrate(fmt.Sprintf("c%02d", i), "1.0.0", map[string]string{"src/lib.rs": fmt.Sprint(i)}))
			}
			var tunnels atomic.Int64
			proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodConnect {
					http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
					return
				}
				tunnels.Add(1)
				up, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				defer up.Close()
				down, buf, err := http.NewResponseController(w).Hijack()
				if err != nil {
					return
				}
				defer down.Close()
				io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					io.Copy(up, buf)
					up.(*net.TCPConn).CloseWrite()
				}()
				io.Copy(down, up)
				down.Close()
				wg.Wait()
			}))
			defer proxy.Close()
			proxyURL, err := url.Parse(proxy.URL)
			if err != nil {
				t.Fatal(err)
			}
			f := newTestFetcher(t, Options{DL: map[string]string{reg.Source().Raw: reg.DL()}})
			conns := f.base.Transport.(*authTransport).next.(*watchdog).next.(*h2Conns)
			// http.ProxyFromEnvironment never proxies 127.0.0.1, and reads
			// the environment once per process. The proxy is chosen for
			// the request's own URL, port included (a NO_PROXY entry
			// may name one).
			regURL, err := url.Parse(reg.URL)
			if err != nil {
				t.Fatal(err)
			}
			var asked sync.Map
			conns.t.Proxy = func(r *http.Request) (*url.URL, error) {
				asked.Store(r.URL.Host, true)
				return proxyURL, nil
			}
			fetchAll(t, f, DefaultJobs, pkgs)
			n, _, _ := reg.Connections()
			if got := tunnels.Load(); got != int64(n) || got == 0 || http2 && got != 1 {
				t.Errorf("%d tunnels through the proxy, %d connections reached the registry; want as many (1 over HTTP/2)", got, n)
			}
			asked.Range(func(host, _ any) bool {
				if host != regURL.Host {
					t.Errorf("proxy asked for %v; want only %s", host, regURL.Host)
				}
				return true
			})
		})
	}
}

// TestH2ConnsGoAway lets the registry's HTTP/2 connection go idle until the
// server sends GOAWAY and closes it: the next requests go on a new
// connection at once, without a retry.
func TestH2ConnsGoAway(t *testing.T) {
	files, pkgs := servedCrates(t, 20)
	var accepted atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(files[r.URL.Path])
	}))
	srv.Config.IdleTimeout = 50 * time.Millisecond
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	trustCert(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	f, retries := unretriedFetcher(t, srv.URL)
	fetchAll(t, f, DefaultJobs, pkgs[:10])
	time.Sleep(300 * time.Millisecond)
	fetchAll(t, f, DefaultJobs, pkgs[10:])
	if n := accepted.Load(); n != 2 || retries.Load() != 0 {
		t.Errorf("%d connections, %d retries; want 2 and none", n, retries.Load())
	}
}

// TestH2ConnsFewStreams fetches from a registry that allows 4 streams per
// connection, fewer than the 100 Go's client assumes until the server's
// SETTINGS arrive: the requests beyond 4 per connection (of HTTP2Conns)
// wait for a stream with the stall watchdog stopped, so none is reported
// stalled though each waits longer than StallTimeout.
func TestH2ConnsFewStreams(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{TLS: true, HTTP2: true, HTTP2Streams: 4, Latency: 100 * time.Millisecond})
	trustCert(t, reg.CertPEM())
	var pkgs []lockfile.Package
	for i := range 40 {
		pkgs = append(pkgs, reg.AddCrate(fmt.Sprintf("c%02d", i), "1.0.0", map[string]string{"src/lib.rs": fmt.Sprint(i)}))
	}
	var retries atomic.Int64
	f := newTestFetcher(t, Options{
		DL:           map[string]string{reg.Source().Raw: reg.DL()},
		StallTimeout: 400 * time.Millisecond,
		Progress: func(e Event) {
			if e.Kind == Retrying {
				retries.Add(1)
			}
		},
	})
	fetchAll(t, f, DefaultJobs, pkgs)
	conns, _, atOnce := reg.Connections()
	if conns > HTTP2Conns || atOnce > HTTP2Conns*4 || retries.Load() != 0 {
		t.Errorf("%d connections, %d requests at once, %d retries; want at most %d, at most %d, none", conns, atOnce, retries.Load(), HTTP2Conns, HTTP2Conns*4)
	}
}

// TestH2ConnsSecondConnection fetches 300 crates from a server that allows
// 128 streams per connection and answers in 100 ms: the requests beyond the
// first connection's 128 go on a second one at once, not a round trip
// later; a third is never made. When the server refuses the second
// connection, or accepts it and never answers its handshake, every crate
// still arrives on the first, without a retry, and without waiting for
// the Transport's handshake timeout (10 s).
func TestH2ConnsSecondConnection(t *testing.T) {
	for _, after := range []string{"", "refused", "held"} {
		t.Run("second="+after, func(t *testing.T) {
			files, pkgs := servedCrates(t, 300)
			var mu sync.Mutex
			inFlight, most := 0, 0
			lis := &countingListener{serve: 1 << 30}
			if after != "" {
				lis.serve, lis.hold = 1, after == "held"
			}
			srv := startH2Server(t, 128, lis, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				inFlight++
				most = max(most, inFlight)
				mu.Unlock()
				time.Sleep(100 * time.Millisecond)
				mu.Lock()
				inFlight--
				mu.Unlock()
				w.Write(files[r.URL.Path])
			}))
			f, retries := unretriedFetcher(t, srv.URL)
			start := time.Now()
			fetchAll(t, f, DefaultJobs, pkgs)
			took := time.Since(start)
			accepted, served := lis.counts()
			switch {
			case retries.Load() != 0:
				t.Errorf("%d retries; want none", retries.Load())
			case after == "" && (accepted != 2 || most <= 128 || most > 256):
				t.Errorf("%d connections, %d requests at once; want 2, and more than 128 (at most 256)", accepted, most)
			case after != "" && (served != 1 || most > 128):
				t.Errorf("%d connections served, %d requests at once; want 1, at most 128", served, most)
			case took > 5*time.Second:
				t.Errorf("took %v; want well under the handshake timeout", took)
			}
			t.Logf("%d connections made, %d served, %d requests at once, %v", accepted, served, most, took)
		})
	}
}

// TestH2ConnsGoAwayOfOne fetches 900 crates from a server that allows 64
// streams per connection, and makes one of the two connections go away
// (GOAWAY, after a response that says Connection: close) early in the
// run: its requests in flight finish, and the others go on the other
// connection and on one made to replace it, without a retry.
func TestH2ConnsGoAwayOfOne(t *testing.T) {
	files, pkgs := servedCrates(t, 900)
	lis := &countingListener{serve: 1 << 30}
	srv := startH2Server(t, 64, lis, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		if r.URL.Path == "/c100-1.0.0.crate" {
			w.Header().Set("Connection", "close")
		}
		w.Write(files[r.URL.Path])
	}))
	f, retries := unretriedFetcher(t, srv.URL)
	fetchAll(t, f, DefaultJobs, pkgs)
	if accepted, _ := lis.counts(); accepted != 3 || retries.Load() != 0 {
		t.Errorf("%d connections, %d retries; want 3 (one replacing the one that went away), none", accepted, retries.Load())
	}
}

// unretriedFetcher returns a Fetcher of the crates.io crates srvURL serves
// as servedCrates makes them, and the count of its retries, which wait a
// minute: one would time the test out.
func unretriedFetcher(t *testing.T, srvURL string) (*Fetcher, *atomic.Int64) {
	var retries atomic.Int64
	f := newTestFetcher(t, Options{
		DL:           map[string]string{CratesIOAlias: srvURL + "/{crate}-{version}.crate"},
		RetryWaitMin: time.Minute, RetryWaitMax: time.Minute,
		Progress: func(e Event) {
			if e.Kind == Retrying {
				retries.Add(1)
			}
		},
	})
	return f, &retries
}

// startH2Server starts a TLS server of h that speaks HTTP/2 and allows
// streams per connection, accepting through lis (its Listener set here),
// trusted by the Fetchers of the test, and closed with it.
func startH2Server(t *testing.T, streams int, lis *countingListener, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: streams}
	lis.Listener = srv.Listener
	srv.Listener = lis
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	trustCert(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	return srv
}

// countingListener counts the connections it accepts, and serves only the
// first serve of them: it closes the others at once, or with hold keeps
// them open unanswered until it is closed.
type countingListener struct {
	net.Listener
	serve    int
	hold     bool
	mu       sync.Mutex
	accepted int
	held     []net.Conn
}

func (l *countingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		l.accepted++
		serve := l.accepted <= l.serve
		if !serve && l.hold {
			l.held = append(l.held, c)
		}
		l.mu.Unlock()
		switch {
		case serve:
			return c, nil
		case !l.hold:
			c.Close()
		}
	}
}

func (l *countingListener) Close() error {
	l.mu.Lock()
	for _, c := range l.held {
		c.Close()
	}
	l.mu.Unlock()
	return l.Listener.Close()
}

// counts returns the connections accepted and those served.
func (l *countingListener) counts() (accepted, served int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.accepted, min(l.accepted, l.serve)
}

// TestHTTP2MaxFrameSize checks the SETTINGS a Fetcher's HTTP/2 connection
// opens with: it accepts frames of http2MaxFrame (Go's client alone would
// ask for 16 KiB, so that a server splits each crate into 16 KiB frames).
// The server here is a bare TLS listener that reads the client preface and
// the first frame, then hangs up.
func TestHTTP2MaxFrameSize(t *testing.T) {
	lis := h2Listener(t)
	defer lis.Close()
	settings := make(chan map[uint16]uint32, 1)
	go func() {
		defer close(settings)
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		preface := make([]byte, len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")+9)
		if _, err := io.ReadFull(c, preface); err != nil {
			return
		}
		head := preface[len(preface)-9:]
		if head[3] != 0x4 { // SETTINGS
			return
		}
		payload := make([]byte, int(head[0])<<16|int(head[1])<<8|int(head[2]))
		if _, err := io.ReadFull(c, payload); err != nil {
			return
		}
		got := map[uint16]uint32{}
		for p := payload; len(p) >= 6; p = p[6:] {
			got[binary.BigEndian.Uint16(p)] = binary.BigEndian.Uint32(p[2:])
		}
		settings <- got
	}()
	f := newTestFetcher(t, Options{Retries: -1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the request: it fails, or waits for a connection that will not come
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+lis.Addr().String()+"/crate", nil)
	go func() {
		if resp, err := f.base.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	got, ok := <-settings
	if !ok {
		t.Fatal("the client sent no SETTINGS frame after its preface")
	}
	const maxFrameSize = 0x5
	if got[maxFrameSize] != http2MaxFrame {
		t.Errorf("SETTINGS_MAX_FRAME_SIZE = %d, want %d (settings %v)", got[maxFrameSize], http2MaxFrame, got)
	}
}

// TestFailedRequestKeepsConnections: a crate the server does not serve (a
// 404, not retried) while others are in flight on the host's HTTP/2
// connection leaves that connection to the next request. retryablehttp
// calls its client's CloseIdleConnections after every request that fails
// for good, which retired every HTTP/2 connection of the host, busy ones
// too, and the next request dialled a new one (found by review).
func TestFailedRequestKeepsConnections(t *testing.T) {
	files, pkgs := servedCrates(t, 12)
	missing := pkgs[11]
	delete(files, "/"+missing.Name+"-1.0.0.crate")
	held := map[string]bool{}
	for _, p := range pkgs[:10] {
		held["/"+p.Name+"-1.0.0.crate"] = true
	}
	release := make(chan struct{})
	var arrived atomic.Int64
	lis := &countingListener{serve: 1 << 30}
	srv := startH2Server(t, 250, lis, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if held[r.URL.Path] {
			arrived.Add(1)
			select {
			case <-release:
			case <-time.After(20 * time.Second):
			}
		}
		w.Write(data)
	}))
	f, _ := unretriedFetcher(t, srv.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	for _, p := range pkgs[:10] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.Crate(ctx, p); err != nil {
				t.Errorf("%s: %v", p.Name, err)
			}
		}()
	}
	defer func() { close(release); wg.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); arrived.Load() < 10; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d requests reached the server", arrived.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := f.Crate(ctx, missing); err == nil {
		t.Fatalf("%s: no error for a crate the server does not serve", missing.Name)
	}
	if _, err := f.Crate(ctx, pkgs[10]); err != nil {
		t.Fatalf("%s: %v", pkgs[10].Name, err)
	}
	if accepted, _ := lis.counts(); accepted != 1 {
		t.Errorf("%d connections accepted; want 1 (the first is healthy, with 240 streams free)", accepted)
	}
}
