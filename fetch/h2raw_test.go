package fetch

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/pem"
	"io"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// rawH2 is a bare HTTP/2 server over TLS whose frames the test controls:
// it allows mcs streams, answers only the streams the test says, with an
// empty 200, and never answers a PING (a server that went silent).
type rawH2 struct {
	lis     net.Listener
	mcs     uint32
	serve   int // connections served; the others are closed at once
	conns   chan *rawH2Conn
	mu      sync.Mutex
	accepts int
}

type rawH2Conn struct {
	c       net.Conn
	wmu     sync.Mutex
	streams chan uint32   // HEADERS received
	ended   chan struct{} // closed when the connection is over
}

// h2Listener is a TLS listener on loopback that offers HTTP/2 (ALPN h2),
// with a certificate the Fetchers of t trust; the test speaks the protocol.
func h2Listener(t *testing.T) net.Listener {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.EnableHTTP2 = true
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	trustCert(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}))
	ts.Close()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	return lis
}

func newRawH2(t *testing.T, mcs uint32, serve int) *rawH2 {
	t.Helper()
	lis := h2Listener(t)
	s := &rawH2{lis: lis, mcs: mcs, serve: serve, conns: make(chan *rawH2Conn, 16)}
	var all []net.Conn
	var allMu sync.Mutex
	t.Cleanup(func() {
		lis.Close()
		allMu.Lock()
		for _, c := range all {
			c.Close()
		}
		allMu.Unlock()
	})
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepts++
			n := s.accepts
			s.mu.Unlock()
			if n > s.serve {
				c.Close()
				continue
			}
			allMu.Lock()
			all = append(all, c)
			allMu.Unlock()
			rc := &rawH2Conn{c: c, streams: make(chan uint32, 1000), ended: make(chan struct{})}
			go rc.run(s.mcs)
			s.conns <- rc
		}
	}()
	return s
}

func (s *rawH2) url() string { return "https://" + s.lis.Addr().String() + "/x" }

func (rc *rawH2Conn) write(typ, flags byte, stream uint32, payload []byte) {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	h := make([]byte, 9, 9+len(payload))
	h[0], h[1], h[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
	h[3], h[4] = typ, flags
	binary.BigEndian.PutUint32(h[5:], stream)
	rc.c.Write(append(h, payload...))
}

func (rc *rawH2Conn) settings(mcs uint32) {
	p := make([]byte, 6)
	binary.BigEndian.PutUint16(p, 0x3) // SETTINGS_MAX_CONCURRENT_STREAMS
	binary.BigEndian.PutUint32(p[2:], mcs)
	rc.write(0x4, 0, 0, p)
}

// respond answers stream with an empty 200 (:status 200 is HPACK static 8).
func (rc *rawH2Conn) respond(stream uint32) {
	rc.write(0x1, 0x1|0x4, stream, []byte{0x88})
}

func (rc *rawH2Conn) next(t *testing.T) uint32 {
	t.Helper()
	return arrives(t, rc.streams, "request")
}

// arrives receives from c, failing t when nothing comes for 5 s.
func arrives[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s reached the server", what)
		panic("unreachable")
	}
}

func (rc *rawH2Conn) run(mcs uint32) {
	defer close(rc.ended)
	defer rc.c.Close()
	preface := make([]byte, 24)
	if _, err := io.ReadFull(rc.c, preface); err != nil {
		return
	}
	rc.settings(mcs)
	head := make([]byte, 9)
	for {
		if _, err := io.ReadFull(rc.c, head); err != nil {
			return
		}
		payload := make([]byte, int(head[0])<<16|int(head[1])<<8|int(head[2]))
		if _, err := io.ReadFull(rc.c, payload); err != nil {
			return
		}
		typ, flags, id := head[3], head[4], binary.BigEndian.Uint32(head[5:])&0x7fffffff
		switch typ {
		case 0x1: // HEADERS
			rc.streams <- id
		case 0x4: // SETTINGS
			if flags&0x1 == 0 { // not an ack: acknowledge it
				rc.write(0x4, 0x1, 0, nil)
			}
		}
	}
}

func (s *rawH2) conn(t *testing.T) *rawH2Conn {
	t.Helper()
	return arrives(t, s.conns, "connection")
}

// TestDeadConnectionEnds: the server stops answering (a hung process or
// proxy: TCP stays up, no frame comes back). The watchdog cancels the
// stalled request, and Go's client counts its stream until a PING ack
// proves the server alive; the retry, finding no stream free and no second
// connection to be made, waited for one with the watchdog paused, for
// ever (found by review). Now the connection is checked with a PING after
// StallTimeout of silence and closed when no ack comes: the request ends,
// with an error, and the connection is closed.
func TestDeadConnectionEnds(t *testing.T) {
	srv := newRawH2(t, 1, 1) // 1 stream; a second connection is refused
	f := newTestFetcher(t, Options{StallTimeout: 300 * time.Millisecond, Retries: 2})
	get := func(ctx context.Context) error {
		return f.get(ctx, srv.url(), func(*httpBody) error { return nil })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- get(ctx) }()
	a := srv.conn(t)
	a.respond(a.next(t)) // a healthy first response
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The server goes silent from here on.
	start := time.Now()
	err := get(ctx)
	if took := time.Since(start); err == nil || took > 3*time.Second {
		t.Errorf("after %v: %v; want an error within a few StallTimeouts (300 ms)", took.Round(time.Millisecond), err)
	}
	select {
	case <-a.ended:
	case <-time.After(3 * time.Second):
		t.Error("the silent connection is still open")
	}
}
