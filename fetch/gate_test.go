package fetch

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

// TestTransportConcurrency fetches 40 crates from a TLS registry the way
// the session does (DefaultJobs at once) and checks what reached the
// server: over HTTP/2 one connection, over HTTP/1.1 at most HTTP1Conns
// connections and requests at once; with Jobs 2, never more than 2.
func TestTransportConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name      string
		http2     bool
		jobs      int
		wantConns int // exactly, if > 0
		maxConns  int
		maxAtOnce int
	}{
		{name: "http2", http2: true, jobs: DefaultJobs, wantConns: 1, maxConns: 1, maxAtOnce: HTTP2Streams},
		{name: "http1", jobs: DefaultJobs, maxConns: HTTP1Conns, maxAtOnce: HTTP1Conns},
		{name: "http2 jobs 2", http2: true, jobs: 2, wantConns: 1, maxConns: 1, maxAtOnce: 2},
		{name: "http1 jobs 2", jobs: 2, maxConns: 2, maxAtOnce: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{TLS: true, HTTP2: tc.http2, Latency: 5 * time.Millisecond})
			cert := filepath.Join(t.TempDir(), "cert.pem")
			if err := os.WriteFile(cert, reg.CertPEM(), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("NIX_SSL_CERT_FILE", cert)
			t.Setenv("SSL_CERT_FILE", cert)
			var pkgs []lockfile.Package
			for i := range 40 {
				pkgs = append(pkgs, reg.AddCrate(fmt.Sprintf("c%02d", i), "1.0.0", map[string]string{"src/lib.rs": fmt.Sprint(i)}))
			}
			fetchAll(t, newTestFetcher(t, Options{Jobs: tc.jobs, DL: map[string]string{reg.Source().Raw: reg.DL()}}), tc.jobs, pkgs)
			conns, peak := reg.Connections()
			if (tc.wantConns > 0 && conns != tc.wantConns) || conns > tc.maxConns || peak > tc.maxAtOnce {
				t.Errorf("%d connections, %d requests at once; want at most %d connections (exactly %d if > 0) and %d requests", conns, peak, tc.maxConns, tc.wantConns, tc.maxAtOnce)
			}
			if got := reg.TotalRequests(); got != 40 {
				t.Errorf("%d requests, want 40", got)
			}
		})
	}
}
