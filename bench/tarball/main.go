// Command tarball benchmarks `cargohash tarball` against `tar … | gzip -6`
// (issue 6) on a vendor tree of about -mb MB (250 by default) made of as many copies of Debian's crate
// sources (/usr/share/cargo/registry, from librust-*-dev packages), in one
// run. cargohash starts from a warm download cache, so it also unpacks
// every crate; tar starts from the finished tree. It also checks that the
// decompressed streams are identical.
//
//	go run ./bench/tarball [-mb 250 | -copies N]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/cargohash/cargohash/bench/internal/measure"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

const registry = "/usr/share/cargo/registry"

func main() {
	copies := flag.Int("copies", 0, "copies of Debian's crate sources (default: enough for -mb)")
	mb := flag.Int("mb", 250, "the size of the unpacked tree to aim for, in MB: the scale is part of the ratio, process start and cache reads weighing more in a small tree")
	flag.Parse()
	if err := run(*copies, int64(*mb)*1e6); err != nil {
		fmt.Fprintln(os.Stderr, "tarball bench:", err)
		os.Exit(1)
	}
}

func run(copies int, target int64) error {
	work, err := os.MkdirTemp("", "cargohash-bench-tarball-")
	if err != nil {
		return err
	}
	if os.Getenv("KEEP") == "" {
		defer os.RemoveAll(work)
	} else {
		fmt.Println("keeping", work)
	}
	bin := filepath.Join(work, "cargohash")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/cargohash").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	dirs, err := os.ReadDir(registry)
	if err != nil {
		return fmt.Errorf("%v (install some librust-*-dev packages)", err)
	}
	type source struct {
		name, version string
		files         []fetchtest.File
		size          int64
	}
	var sources []source
	var once int64 // one copy of every crate, unpacked
	for _, d := range dirs {
		name, version, ok := splitNameVersion(d.Name())
		if !ok {
			continue
		}
		files, size, err := crateFiles(filepath.Join(registry, d.Name()))
		if err != nil {
			return err
		}
		sources = append(sources, source{name, version, files, size})
		once += size
	}
	if copies == 0 {
		copies = max(1, int((target+once-1)/max(once, 1)))
	}
	var crates []fetchtest.CrateData
	var unpacked int64
	for _, src := range sources {
		name, version, files, size := src.name, src.version, src.files, src.size
		for c := range copies {
			cname := fmt.Sprintf("%s-c%d", name, c)
			crates = append(crates, fetchtest.CrateData{Name: cname, Version: version, Data: fetchtest.CrateFiles(cname, version, files)})
			unpacked += size
		}
	}
	dl, pkgs, err := fetchtest.WriteMirror(filepath.Join(work, "mirror"), crates)
	if err != nil {
		return err
	}
	for i := range pkgs {
		pkgs[i].Source, _ = lockfile.ParseSource(lockfile.CratesIORegistry)
	}
	proj := filepath.Join(work, "proj")
	os.Mkdir(proj, 0o755)
	if err := os.WriteFile(filepath.Join(proj, "Cargo.lock"), fetchtest.Lock(pkgs...), 0o644); err != nil {
		return err
	}
	cache := filepath.Join(work, "cache")
	common := []string{"--quiet", "--cache-dir", cache, "--registry-dl", "crates-io=" + dl}
	if out, err := exec.Command(bin, append(append([]string{"prefetch"}, common...), proj)...).CombinedOutput(); err != nil {
		return fmt.Errorf("warming the cache: %v\n%s", err, out)
	}
	fmt.Printf("%d crates (%d copies of %d), %.0f MB unpacked\n", len(crates), copies, len(sources), float64(unpacked)/1e6)

	// cargohash tarball, from the warm cache; the best of three runs.
	ours := filepath.Join(work, "ours.tar.gz")
	var tOurs time.Duration
	var rss int
	for range 3 {
		os.Remove(ours)
		cmd := exec.Command(bin, append(append([]string{"tarball", "--name", "bench", "--out", ours}, common...), proj)...)
		t, r, err := measure.Run(cmd)
		if err != nil {
			return fmt.Errorf("cargohash tarball: %v", err)
		}
		if tOurs == 0 || t < tOurs {
			tOurs = t
		}
		rss = max(rss, r)
	}

	// The same tree on disk, for GNU tar.
	ref := filepath.Join(work, "ref")
	tree := filepath.Join(ref, "bench-vendor")
	if out, err := exec.Command("tar", "-C", ref, "-xzf", ours).CombinedOutput(); err != nil {
		os.MkdirAll(ref, 0o755)
		if out, err = exec.Command("tar", "-C", ref, "-xzf", ours).CombinedOutput(); err != nil {
			return fmt.Errorf("tar -x: %v\n%s", err, out)
		}
	} else {
		_ = out
	}
	if _, err := os.Stat(tree); err != nil {
		return err
	}
	refOut := filepath.Join(work, "ref.tar.gz")
	sh := fmt.Sprintf("tar --format=gnu --sort=name --owner=0 --group=0 --numeric-owner --mtime=@1 -C %s -cf - bench-vendor | gzip -6 > %s", ref, refOut)
	var tRef time.Duration
	for range 3 {
		start := time.Now()
		if out, err := exec.Command("sh", "-c", sh).CombinedOutput(); err != nil {
			return fmt.Errorf("tar | gzip: %v\n%s", err, out)
		}
		if t := time.Since(start); tRef == 0 || t < tRef {
			tRef = t
		}
	}

	a, _ := exec.Command("gzip", "-dc", ours).Output()
	b, _ := exec.Command("gzip", "-dc", refOut).Output()
	same := "identical"
	if !bytes.Equal(a, b) {
		same = "DIFFERENT"
	}
	so, _ := os.Stat(ours)
	sr, _ := os.Stat(refOut)
	fmt.Printf("cargohash tarball (from cache): best %.2fs, %.1f MB, peak RSS %d MB\n", tOurs.Seconds(), float64(so.Size())/1e6, rss)
	fmt.Printf("tar | gzip -6 (from the tree):  best %.2fs, %.1f MB\n", tRef.Seconds(), float64(sr.Size())/1e6)
	fmt.Printf("ratio %.2fx; uncompressed streams %s (%d MB)\n", tRef.Seconds()/tOurs.Seconds(), same, len(a)/1e6)
	return nil
}

// splitNameVersion splits Debian's NAME-VERSION directory names.
func splitNameVersion(s string) (string, string, bool) {
	for i := len(s) - 1; i > 0; i-- {
		if s[i] == '-' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' {
			return s[:i], s[i+1:], true
		}
	}
	return "", "", false
}

func crateFiles(root string) ([]fetchtest.File, int64, error) {
	files, err := fetchtest.FilesFromDir(root)
	var size int64
	for _, f := range files {
		size += int64(len(f.Body))
	}
	return files, size, err
}
