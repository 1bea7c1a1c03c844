// Command prefetch benchmarks `cargohash prefetch` (issues 3 and 15) against
// a loopback registry that speaks HTTPS and adds a latency to every request,
// in one run. For every latency and protocol it reports, each the median of
// -runs:
//
//   - floor: the faster of two in-process clients (see getAll), each body
//     sha256'd and discarded: one crate GET, then every other at once
//     (over HTTP/2 on one connection; over HTTP/1.1 on as many
//     connections as cargohash uses), and over HTTP/2 every GET at once
//     on one connection: the time the network itself takes, with no
//     process start, cache or hashing of the tree;
//   - over HTTP/2 also the floor as issue 15 defines it ("232 requests / 64
//     streams × 20 ms, plus transfer and hashing"): the same in-process
//     client with at most 64 GETs at once on one connection;
//   - nixpkgs: the nixpkgs fetchCargoVendor pipeline, nixpkgs_baseline.py (5
//     workers, requests, tarballs written) then `nix hash path` (needs
//     python3 with requests and nix; skipped with the reason otherwise);
//   - ref: another cargohash binary (-ref, such as a build of main) cold at
//     its defaults;
//   - cold: this tree's cargohash at its defaults, empty cache;
//   - warm: the same with the cache of the cold run.
//
// Peak RSS is GNU time's. The cargoHash of every run must agree, nixpkgs'
// included.
//
//	go run ./bench/prefetch [-crates 232] [-latency 20ms,100ms] [-proto h2,h1] [-runs 3] [-ref BIN]
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cargohash/cargohash/bench/internal/measure"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

//go:embed nixpkgs_baseline.py
var baselineScript []byte

func main() {
	n := flag.Int("crates", 232, "crates in the lock")
	latencies := flag.String("latency", "20ms,100ms", "added to every request (comma-separated list)")
	protos := flag.String("proto", "h2,h1", "registry protocols: h2 (HTTPS offering HTTP/2), h1 (HTTPS, HTTP/1.1 only)")
	runs := flag.Int("runs", 3, "runs of each measurement (the median is reported)")
	ref := flag.String("ref", "", "another cargohash binary to measure cold, such as a build of main")
	serve := flag.Bool("serve", false, "only serve the first latency and protocol and print how to prefetch from it, for profiling")
	flag.Parse()
	b := &bench{n: *n, runs: max(*runs, 1), ref: *ref, serve: *serve}
	if err := b.run(strings.Split(*latencies, ","), strings.Split(*protos, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "prefetch bench:", err)
		os.Exit(1)
	}
}

type bench struct {
	n     int
	runs  int
	ref   string
	serve bool

	work  string
	bin   string
	crate []crateFile
	total int64
	hash  string
}

func (b *bench) run(latencies, protos []string) error {
	var err error
	b.work, err = os.MkdirTemp("", "cargohash-bench-prefetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(b.work)
	b.bin = filepath.Join(b.work, "cargohash")
	if out, err := exec.Command("go", "build", "-o", b.bin, "./cmd/cargohash").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	b.makeCrates()
	fmt.Printf("%d crates, %.1f MB, HTTPS on 127.0.0.1, %d runs each (median), %s\n", b.n, float64(b.total)/1e6, b.runs, time.Now().UTC().Format(time.RFC3339))
	nixpkgs := b.nixpkgsMissing()
	if nixpkgs != "" {
		fmt.Println("nixpkgs pipeline skipped:", nixpkgs)
	}
	for _, l := range latencies {
		latency, err := time.ParseDuration(strings.TrimSpace(l))
		if err != nil {
			return err
		}
		for _, proto := range protos {
			if err := b.scenario(latency, strings.TrimSpace(proto), nixpkgs == ""); err != nil {
				return fmt.Errorf("%v %s: %w", latency, proto, err)
			}
		}
	}
	fmt.Println("cargoHash", b.hash)
	return nil
}

// makeCrates builds the crate files: sizes like crates.io's, most a few KiB
// to 100 KiB, one in twenty 300 KiB to 1 MiB.
func (b *bench) makeCrates() {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range b.n {
		size := 2<<10 + rng.IntN(100<<10)
		if i%20 == 0 {
			size = 300<<10 + rng.IntN(700<<10)
		}
		body := make([]byte, size)
		for j := range body {
			body[j] = byte('a' + rng.IntN(26))
		}
		name := fmt.Sprintf("crate%04d", i)
		data := fetchtest.Crate(name, "1.0.0", map[string]string{"src/lib.rs": string(body)})
		b.total += int64(len(data))
		b.crate = append(b.crate, crateFile{Name: name, Version: "1.0.0", Data: data})
	}
}

// nixpkgsMissing says why the nixpkgs pipeline cannot run, "" if it can.
func (b *bench) nixpkgsMissing() string {
	if err := exec.Command("python3", "-c", "import requests, tomllib").Run(); err != nil {
		return "python3 with requests and tomllib: " + err.Error()
	}
	if _, err := exec.LookPath("nix"); err != nil {
		return err.Error()
	}
	return ""
}

func (b *bench) scenario(latency time.Duration, proto string, nixpkgs bool) error {
	if proto != "h1" && proto != "h2" {
		return fmt.Errorf("unknown protocol %q", proto)
	}
	reg := fetchtest.NewRegistry(nil, fetchtest.RegistryOptions{Latency: latency, TLS: true, HTTP2: proto == "h2"})
	defer reg.Close()
	var pkgs []lockfile.Package
	for _, c := range b.crate {
		p := reg.Add(c.Name, c.Version, c.Data)
		p.Source, _ = lockfile.ParseSource(lockfile.CratesIORegistry)
		pkgs = append(pkgs, p)
	}
	dir, err := os.MkdirTemp(b.work, proto+"-")
	if err != nil {
		return err
	}
	lock := filepath.Join(dir, "Cargo.lock")
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(lock, fetchtest.Lock(pkgs...), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cert, reg.CertPEM(), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(), "SSL_CERT_FILE="+cert, "NIX_SSL_CERT_FILE="+cert, "REQUESTS_CA_BUNDLE="+cert,
		"CARGO_HOME="+filepath.Join(dir, "no-cargo-home"))
	if b.serve {
		fmt.Printf("SSL_CERT_FILE=%s NIX_SSL_CERT_FILE=%[1]s CARGO_HOME=/nonexistent %s prefetch --cache-dir %s --registry-dl crates-io=%s %s\n", cert, b.bin, filepath.Join(dir, "cache"), reg.DL(), lock)
		select {}
	}
	fmt.Printf("\n%v per request, %s registry (%s)\n", latency, proto, map[string]string{"h2": "HTTPS offering HTTP/2 and HTTP/1.1", "h1": "HTTPS, HTTP/1.1 only"}[proto])

	floor2, err := b.median(func() (time.Duration, int, error) { return getAll(reg, pkgs, false, len(pkgs)) })
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	floor, floor64 := floor2, measurement{}
	if proto == "h2" {
		floor1, err := b.median(func() (time.Duration, int, error) { return getAll(reg, pkgs, true, len(pkgs)) })
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		floor64, err = b.median(func() (time.Duration, int, error) { return getAll(reg, pkgs, true, issueStreams) })
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		floor.d = min(floor.d, floor1.d)
		fmt.Printf("  %-34s %7.3fs\n", "floor, one GET then the rest", floor2.d.Seconds())
		fmt.Printf("  %-34s %7.3fs\n", "floor, every GET at once", floor1.d.Seconds())
		fmt.Printf("  %-34s %7.3fs\n", fmt.Sprintf("floor, %d GETs at once (issue 15)", issueStreams), floor64.d.Seconds())
	}
	report := func(name string, d time.Duration, rss int) {
		fmt.Printf("  %-34s %7.3fs  %5.2fx the floor", name, d.Seconds(), d.Seconds()/floor.d.Seconds())
		if proto == "h2" {
			fmt.Printf(" (%.2fx one GET then the rest, %.2fx %d at once)", d.Seconds()/floor2.d.Seconds(), d.Seconds()/floor64.d.Seconds(), issueStreams)
		}
		if rss > 0 {
			fmt.Printf(", peak RSS %3d MB", rss)
		}
		fmt.Println()
	}
	report("floor (in-process, the faster)", floor.d, 0)

	var nixpkgsTime time.Duration
	if nixpkgs {
		m, err := b.median(func() (time.Duration, int, error) { return b.nixpkgs(dir, lock, reg.DL(), env) })
		if err != nil {
			return fmt.Errorf("nixpkgs: %w", err)
		}
		nixpkgsTime = m.d
		report("nixpkgs (5 workers + nix hash path)", m.d, m.rss)
	}
	cache := filepath.Join(dir, "cache")
	prefetch := func(bin string, cold bool) func() (time.Duration, int, error) {
		return func() (time.Duration, int, error) {
			if cold {
				os.RemoveAll(cache)
			}
			cmd := exec.Command(bin, "prefetch", "--quiet", "--cache-dir", cache, "--registry-dl", "crates-io="+reg.DL(), lock)
			cmd.Env = env
			var out strings.Builder
			cmd.Stdout = &out
			d, rss, err := measure.Run(cmd)
			if err == nil {
				err = b.agree(strings.TrimSpace(out.String()))
			}
			return d, rss, err
		}
	}
	if b.ref != "" {
		m, err := b.median(prefetch(b.ref, true))
		if err != nil {
			return fmt.Errorf("ref: %w", err)
		}
		report("ref cold (-ref at its defaults)", m.d, m.rss)
	}
	cold, err := b.median(prefetch(b.bin, true))
	if err != nil {
		return fmt.Errorf("cold: %w", err)
	}
	report("cold (defaults)", cold.d, cold.rss)
	warm, err := b.median(prefetch(b.bin, false))
	if err != nil {
		return fmt.Errorf("warm: %w", err)
	}
	report("warm (defaults)", warm.d, warm.rss)
	if nixpkgsTime > 0 {
		fmt.Printf("  cold is %.1fx faster than the nixpkgs pipeline\n", nixpkgsTime.Seconds()/cold.d.Seconds())
	}
	return nil
}

type measurement struct {
	d   time.Duration
	rss int
}

// median runs f b.runs times and returns the median time and the largest
// peak RSS.
func (b *bench) median(f func() (time.Duration, int, error)) (measurement, error) {
	var ds []time.Duration
	rss := 0
	for range b.runs {
		d, r, err := f()
		if err != nil {
			return measurement{}, err
		}
		ds = append(ds, d)
		rss = max(rss, r)
	}
	slices.Sort(ds)
	return measurement{d: ds[len(ds)/2], rss: rss}, nil
}

func (b *bench) agree(hash string) error {
	if b.hash != "" && hash != b.hash {
		return fmt.Errorf("cargoHash %s, earlier runs %s", hash, b.hash)
	}
	b.hash = hash
	return nil
}

// nixpkgs runs the baseline script into a fresh staging directory, then
// `nix hash path` on it.
func (b *bench) nixpkgs(dir, lock, dl string, env []string) (time.Duration, int, error) {
	script := filepath.Join(dir, "nixpkgs_baseline.py")
	if err := os.WriteFile(script, baselineScript, 0o644); err != nil {
		return 0, 0, err
	}
	out := filepath.Join(dir, "nixpkgs-staging")
	os.RemoveAll(out)
	defer os.RemoveAll(out)
	start := time.Now()
	cmd := exec.Command("python3", script, lock, dl, out)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	_, rss, err := measure.Run(cmd)
	if err != nil {
		return 0, 0, err
	}
	hash, err := exec.Command("nix", "--extra-experimental-features", "nix-command", "hash", "path", out).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("nix hash path: %w", err)
	}
	return time.Since(start), rss, b.agree(strings.TrimSpace(string(hash)))
}

// getAll GETs every crate of reg with one in-process client, hashing each
// body, and returns the time from the first dial to the last byte:
//
//   - one GET, then all the others at once with the same client (HTTP/2
//     streams on the connection of the first, or the fetch.HTTP1Conns
//     HTTP/1.1 connections cargohash allows itself);
//   - with atOnce (HTTP/2 only), every GET at once as streams of one
//     connection made first (http.Transport.NewClientConn, which waits for
//     the server's SETTINGS before sending more than 100): one round trip
//     fewer, as cargohash does since it makes its HTTP/2 connections;
//     at most streams of them at once.
func getAll(reg *fetchtest.Registry, pkgs []lockfile.Package, atOnce bool, streams int) (time.Duration, int, error) {
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(reg.CertPEM())
	t := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true,
		MaxConnsPerHost: fetch.HTTP1Conns, MaxIdleConnsPerHost: fetch.HTTP1Conns}
	defer t.CloseIdleConnections()
	client := &http.Client{Transport: t}
	start := time.Now()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(streams)
	get := func(p lockfile.Package) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.CrateURL(p.Name, p.Version), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", req.URL, resp.Status)
		}
		h := sha256.New()
		_, err = io.Copy(h, resp.Body)
		return err
	}
	rest := pkgs
	if atOnce {
		u, err := url.Parse(reg.CrateURL(pkgs[0].Name, pkgs[0].Version))
		if err != nil {
			return 0, 0, err
		}
		cc, err := t.NewClientConn(context.Background(), "https", u.Host)
		if err != nil {
			return 0, 0, err
		}
		defer cc.Close()
		client.Transport = cc
	} else {
		if err := get(pkgs[0]); err != nil { // dials the one connection HTTP/2 needs
			return 0, 0, err
		}
		rest = pkgs[1:]
	}
	for _, p := range rest {
		g.Go(func() error { return get(p) })
	}
	err := g.Wait()
	return time.Since(start), 0, err
}

// issueStreams is the number of streams issue 15's estimate of the floor
// assumes ("232 requests / 64 streams × 20 ms").
const issueStreams = 64

type crateFile struct {
	Name, Version string
	Data          []byte
}
