// Command prefetch benchmarks `cargohash prefetch` (issue 3): a ~300-crate
// lock served by a loopback registry that adds 20 ms to every request,
// prefetched cold (empty cache) with --jobs 1 and with the default jobs,
// then warm (full cache), in one run. It prints times, the latency floor
// (requests × latency / jobs) and peak RSS.
//
//	go run ./bench/prefetch [-crates 300] [-latency 20ms]
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/cargohash/cargohash/bench/internal/measure"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/fetch/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

func main() {
	n := flag.Int("crates", 300, "crates in the lock")
	latency := flag.Duration("latency", 20*time.Millisecond, "added to every request")
	flag.Parse()
	if err := run(*n, *latency); err != nil {
		fmt.Fprintln(os.Stderr, "prefetch bench:", err)
		os.Exit(1)
	}
}

func run(n int, latency time.Duration) error {
	work, err := os.MkdirTemp("", "cargohash-bench-prefetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin := filepath.Join(work, "cargohash")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/cargohash").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}

	reg := fetchtest.NewRegistry(nil, fetchtest.RegistryOptions{Latency: latency})
	defer reg.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var pkgs []lockfile.Package
	var total int64
	for i := range n {
		// Sizes like crates.io's: most a few KiB to 100 KiB, some larger.
		size := 2<<10 + rng.IntN(100<<10)
		if i%20 == 0 {
			size = 300<<10 + rng.IntN(700<<10)
		}
		body := make([]byte, size)
		for j := range body {
			body[j] = byte('a' + rng.IntN(26))
		}
		name := fmt.Sprintf("crate%03d", i)
		data := fetchtest.Crate(name, "1.0.0", map[string]string{"src/lib.rs": string(body)})
		total += int64(len(data))
		p := reg.Add(name, "1.0.0", data)
		p.Source, _ = lockfile.ParseSource(lockfile.CratesIORegistry)
		pkgs = append(pkgs, p)
	}
	lock := filepath.Join(work, "Cargo.lock")
	if err := os.WriteFile(lock, fetchtest.Lock(pkgs...), 0o644); err != nil {
		return err
	}
	cache := filepath.Join(work, "cache")
	fmt.Printf("%d crates, %.1f MB, %v added per request\n", n, float64(total)/1e6, latency)

	var hash string
	for _, c := range []struct {
		name string
		jobs int
		cold bool
	}{
		{"cold, --jobs 1 (baseline)", 1, true},
		{fmt.Sprintf("cold, --jobs %d", fetch.DefaultJobs), fetch.DefaultJobs, true},
		{fmt.Sprintf("warm, --jobs %d", fetch.DefaultJobs), fetch.DefaultJobs, false},
	} {
		if c.cold {
			os.RemoveAll(cache)
		}
		before := reg.TotalRequests()
		cmd := exec.Command(bin, "prefetch", "--quiet", "--jobs", fmt.Sprint(c.jobs), "--cache-dir", cache,
			"--registry-dl", "crates-io="+reg.DL(), lock)
		cmd.Env = append(os.Environ(), "CARGO_HOME="+filepath.Join(work, "no-cargo-home"))
		var out strings.Builder
		cmd.Stdout = &out
		elapsed, rss, err := measure.Run(cmd)
		if err != nil {
			return fmt.Errorf("%s: %v", c.name, err)
		}
		got := strings.TrimSpace(out.String())
		if hash != "" && got != hash {
			return fmt.Errorf("%s: hash %s, earlier runs %s", c.name, got, hash)
		}
		hash = got
		reqs := reg.TotalRequests() - before
		floor := time.Duration(reqs) * latency / time.Duration(c.jobs)
		ratio := ""
		if floor > 0 {
			ratio = fmt.Sprintf(" = %.2fx the floor", elapsed.Seconds()/floor.Seconds())
		}
		fmt.Printf("%-28s %7.3fs  %3d requests, latency floor %.3fs%s, peak RSS %d MB\n",
			c.name, elapsed.Seconds(), reqs, floor.Seconds(), ratio, rss)
	}
	fmt.Println("cargoHash", hash)
	return nil
}
