package cargohash_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// The cache tests run Prefetch with the settings of the command line: the
// download cache at DIR and git's under DIR/git.

// cacheOptions are w's options with the cache in dir.
func (w *world) cacheOptions(dir string, log io.Writer) cargohash.Options {
	o := w.opts
	o.Fetch.CacheDir = dir
	o.GitCacheDir = filepath.Join(dir, "git")
	o.Log = log
	o.Fetch.Log = nil
	return o
}

// mustPrefetch runs Prefetch of lock in a session of its own with opts,
// closed before it returns (which puts its downloads in the cache).
func mustPrefetch(t *testing.T, opts cargohash.Options, lock *lockfile.File) *cargohash.Result {
	t.Helper()
	s, err := cargohash.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Prefetch(context.Background(), lock)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// prefetchIn runs Prefetch of lock with opts and returns the cargoHash and
// the log.
func prefetchIn(t *testing.T, opts cargohash.Options, lock *lockfile.File) (string, string) {
	t.Helper()
	var log syncBuffer
	opts.Log = &log
	s, err := cargohash.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := s.Prefetch(ctx, lock)
	if err != nil {
		t.Fatalf("prefetch: %v\nlog:\n%s", err, log.String())
	}
	return res.CargoHash.String(), log.String()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// damageFile truncates path to size, or flips its middle byte (size -1).
func damageFile(t *testing.T, path string, size int64) {
	t.Helper()
	if size < 0 {
		reftest.FlipByte(t, path, -1)
		return
	}
	os.Chmod(path, 0o644)
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

// flipEveryCrate flips a byte of every crate in the cache pack at path.
func flipEveryCrate(t *testing.T, path string, crates map[string][]byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range crates {
		at := bytes.Index(data, c)
		if at < 0 {
			t.Fatalf("%s is not in %s", name, path)
		}
		reftest.FlipByte(t, path, int64(at+len(c)/2))
	}
}

// TestPrefetchHealsDamagedCache damages a warm cache (crates, git
// repositories, remembered locks) one file at a time and all at once, and
// in the shapes a killed process or a careless hand leaves; every prefetch
// from the damaged cache gives the golden cargoHash, with at most one line
// per damaged entry on the log.
func TestPrefetchHealsDamagedCache(t *testing.T) {
	w := newWorld(t)
	lock := writeLock(t, w.lock)
	warm := t.TempDir()
	golden, _ := prefetchIn(t, w.cacheOptions(warm, nil), lock)
	files := reftest.Files(t, warm)
	// The repositories of git sources are read on every run; the git
	// index's only when a crate of it is not in the cache.
	sourceRepo := map[string]bool{}
	repos, _ := filepath.Glob(filepath.Join(warm, "git", "*.git"))
	for _, r := range repos {
		url, err := os.ReadFile(filepath.Join(r, "cargohash-url"))
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(warm, r)
		sourceRepo[rel] = bytes.Contains(w.lock, []byte("git+"+strings.TrimSpace(string(url))))
	}
	// The crates are in one pack.
	packs, _ := filepath.Glob(filepath.Join(warm, "packs", "*.pack"))
	if len(packs) != 1 {
		t.Fatalf("cache holds packs %v, want one", packs)
	}
	pack, _ := filepath.Rel(warm, packs[0])
	// Damage to every pack and repository: one note each (the index is
	// read then, to fetch its damaged crates again).
	entries := len(packs) + len(repos)
	if len(repos) != 3 {
		t.Fatalf("git cache holds %v, want three repositories (two sources, one index)", repos)
	}

	type damage struct {
		name  string
		do    func(t *testing.T, cache string)
		notes int  // at most
		exact bool // notes is exact: the damage cannot go unnoticed
	}
	var cases []damage
	for _, f := range files {
		// A crate's or a git object's bytes are read on every run; other
		// files (FETCH_HEAD, a remembered lock) may not matter at all.
		repo, _, _ := strings.Cut(f, ".git"+string(filepath.Separator))
		read := strings.HasPrefix(f, "packs"+string(filepath.Separator)) ||
			sourceRepo[repo+".git"] && strings.Contains(f, string(filepath.Separator)+"objects"+string(filepath.Separator))
		cases = append(cases, damage{"flip/" + f, func(t *testing.T, c string) { damageFile(t, filepath.Join(c, f), -1) }, 1, read})
	}
	all := func(size int64) func(t *testing.T, c string) {
		return func(t *testing.T, c string) {
			for _, f := range files {
				if size == -1 && f == pack {
					flipEveryCrate(t, filepath.Join(c, f), w.crates)
					continue
				}
				if size == -2 {
					fi, _ := os.Stat(filepath.Join(c, f))
					damageFile(t, filepath.Join(c, f), fi.Size()/2)
					continue
				}
				damageFile(t, filepath.Join(c, f), size)
			}
		}
	}
	replace := func(rel string, dir bool) func(t *testing.T, c string) {
		return func(t *testing.T, c string) {
			p := filepath.Join(c, rel)
			os.RemoveAll(p)
			if dir {
				os.MkdirAll(filepath.Join(p, "x"), 0o755)
			} else {
				os.WriteFile(p, []byte("x"), 0o644)
			}
		}
	}
	cases = append(cases,
		damage{"flip-all", all(-1), len(w.crates) + len(repos), true},
		damage{"truncate-all-half", all(-2), entries, true},
		damage{"truncate-all-empty", all(0), entries, true},
		damage{"crates-is-a-file", replace("crates", false), 1, true},
		damage{"packs-is-a-file", replace("packs", false), 1, true},
		damage{"no-packs", replace("packs", true), 0, false},
		damage{"pack-is-a-directory", replace(pack, true), 1, true},
		damage{"crate-file-is-a-directory", func(t *testing.T, c string) {
			// A crate in a file of its own (vendor's, or an older
			// version's), and no pack.
			os.RemoveAll(filepath.Join(c, "packs"))
			for _, data := range w.crates {
				os.MkdirAll(filepath.Join(c, "crates", "1220"+fetchtest.Checksum(data), "x"), 0o755)
				break
			}
		}, 1, true},
		damage{"pack-is-a-symlink", func(t *testing.T, c string) {
			p := filepath.Join(c, pack)
			os.Rename(p, p+".moved")
			os.Symlink(filepath.Base(p)+".moved", p)
		}, 1, true},
		damage{"pack-trailer", func(t *testing.T, c string) {
			fi, _ := os.Stat(filepath.Join(c, pack))
			reftest.FlipByte(t, filepath.Join(c, pack), fi.Size()-20)
		}, 1, true},
		damage{"pack-index-record", func(t *testing.T, c string) {
			fi, _ := os.Stat(filepath.Join(c, pack))
			reftest.FlipByte(t, filepath.Join(c, pack), fi.Size()-32-56+40) // the last record's size
		}, 1, true},
		damage{"pack-first-crate", func(t *testing.T, c string) { reftest.FlipByte(t, filepath.Join(c, pack), 0) }, 1, true},
		damage{"pack-truncated-into-index", func(t *testing.T, c string) {
			fi, _ := os.Stat(filepath.Join(c, pack))
			damageFile(t, filepath.Join(c, pack), fi.Size()-40)
		}, 1, true},
		damage{"git-is-a-file", replace("git", false), 1, true},
		damage{"locks-is-a-file", replace("locks", false), 0, false},
		damage{"no-crates", replace("crates", true), 0, false},
		damage{"no-git", replace("git", true), 0, false},
	)
	for _, r := range repos {
		rel, _ := filepath.Rel(warm, r)
		cases = append(cases,
			damage{"repository-is-a-file/" + rel, replace(rel, false), 1, sourceRepo[rel]},
			damage{"repository-is-empty/" + rel, replace(rel, true), 1, sourceRepo[rel]},
			damage{"lock-is-a-directory/" + rel, replace(rel+".lock", true), 0, false},
			damage{"stale-git-lock/" + rel, func(t *testing.T, c string) {
				os.WriteFile(filepath.Join(c, rel, "shallow.lock"), nil, 0o644)
				os.WriteFile(filepath.Join(c, rel, "config.lock"), nil, 0o644)
			}, 1, false}, // warm: no fetch, so git's locks do not matter
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cache := filepath.Join(t.TempDir(), "cache")
			if err := os.CopyFS(cache, os.DirFS(warm)); err != nil {
				t.Fatal(err)
			}
			tc.do(t, cache)
			got, log := prefetchIn(t, w.cacheOptions(cache, nil), lock)
			if got != golden {
				t.Fatalf("cargoHash %s from the damaged cache, want %s\nlog:\n%s", got, golden, log)
			}
			if notes := reftest.LinesWith(log, "damaged"); len(notes) > tc.notes || tc.exact && len(notes) != tc.notes {
				t.Errorf("%d notes, want %s%d:\n%s", len(notes), map[bool]string{false: "at most "}[tc.exact], tc.notes, strings.Join(notes, "\n"))
			}
			// Healed: the next run finds nothing to report.
			got, log = prefetchIn(t, w.cacheOptions(cache, nil), lock)
			if notes := reftest.LinesWith(log, "damaged"); got != golden || len(notes) != 0 {
				t.Errorf("the run after: cargoHash %s (want %s), %d notes:\n%s", got, golden, len(notes), strings.Join(notes, "\n"))
			}
		})
	}
}

// helperEnv carries what TestHelperPrefetch runs.
const helperEnv = "CARGOHASH_PREFETCH_HELPER"

type helperArgs struct {
	Cache string
	Lock  string
	DL    map[string]string
}

// TestHelperPrefetch is the child process of the kill and concurrency
// tests: it does nothing unless helperEnv says what to prefetch; then it
// prints the cargoHash on stdout and a line per step on stderr.
func TestHelperPrefetch(t *testing.T) {
	var a helperArgs
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &a); err != nil {
		return
	}
	lock, err := lockfile.Load(a.Lock)
	if err != nil {
		t.Fatal(err)
	}
	res := mustPrefetch(t, cargohash.Options{
		Fetch: fetch.Options{CacheDir: a.Cache, NoCargoHome: true, DL: a.DL, Progress: func(e fetch.Event) {
			if e.Kind == fetch.Done || e.Kind == fetch.Started {
				fmt.Fprintf(os.Stderr, "crate %s %d\n", e.Crate, e.Kind)
			}
		}},
		GitCacheDir: filepath.Join(a.Cache, "git"),
		Log:         os.Stderr,
	}, lock)
	fmt.Println(res.CargoHash)
}

// helper returns the command of a child prefetching lock into cache.
func (w *world) helper(ctx context.Context, t *testing.T, cache string, lock *lockfile.File) *exec.Cmd {
	a, _ := json.Marshal(helperArgs{Cache: cache, Lock: lock.Path, DL: w.opts.Fetch.DL})
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperPrefetch$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(a))
	return cmd
}

// runHelper runs the child to the end and returns the hash it printed.
func runHelper(cmd *exec.Cmd) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	for _, l := range strings.Split(stdout.String(), "\n") {
		if strings.HasPrefix(l, "sha256-") {
			return l, nil
		}
	}
	return "", fmt.Errorf("no hash printed:\n%s", stdout.String())
}

// TestPrefetchAfterSIGKILL kills a prefetch with SIGKILL at several points
// of a cold fetch (after its k-th step, or after a time), then prefetches
// with the cache it left: the golden cargoHash, and the cache is whole
// after that second run.
func TestPrefetchAfterSIGKILL(t *testing.T) {
	w := newWorld(t)
	lock := writeLock(t, w.lock)
	golden, _ := prefetchIn(t, w.cacheOptions(t.TempDir(), nil), lock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel) // after the parallel subtests
	// A whole cold run says how many steps there are to kill it after.
	var full bytes.Buffer
	cmd := w.helper(ctx, t, t.TempDir(), lock)
	cmd.Stderr = &full
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, full.String())
	}
	steps := strings.Count(full.String(), "\n")
	if steps < 8 {
		t.Fatalf("a cold run logs %d steps, too few to kill it between them:\n%s", steps, full.String())
	}
	type point struct {
		lines int           // kill after this many lines on stderr, or
		after time.Duration // after this long
	}
	points := []point{{lines: 1}, {lines: 2}, {lines: steps / 4}, {lines: steps / 2}, {lines: 3 * steps / 4}, {lines: steps - 1}, {after: 50 * time.Millisecond}, {after: 300 * time.Millisecond}}
	for _, p := range points {
		t.Run(fmt.Sprintf("lines=%d,after=%v", p.lines, p.after), func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			cmd := w.helper(ctx, t, cache, lock)
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout = io.Discard
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if p.after > 0 {
				time.Sleep(p.after)
				cmd.Process.Kill()
			} else {
				sc := bufio.NewScanner(stderr)
				for n := 0; n < p.lines && sc.Scan(); n++ {
				}
				cmd.Process.Kill()
			}
			io.Copy(io.Discard, stderr)
			if err := cmd.Wait(); err == nil {
				t.Logf("the child finished before the kill")
			}

			got, log := prefetchIn(t, w.cacheOptions(cache, nil), lock)
			if got != golden {
				t.Fatalf("after SIGKILL: cargoHash %s, want %s\nlog:\n%s", got, golden, log)
			}
			if _, log := prefetchIn(t, w.cacheOptions(cache, nil), lock); len(reftest.LinesWith(log, "damaged")) != 0 {
				t.Errorf("the cache is not whole after the run that followed the kill:\n%s", log)
			}
		})
	}
}

// TestPrefetchConcurrentProcesses runs two prefetches at once on one cache
// directory, cold, several times: of the same lock, and of two locks that
// share crates and git sources. Both get their golden hashes.
func TestPrefetchConcurrentProcesses(t *testing.T) {
	w := newWorld(t)
	full := writeLock(t, w.lock)
	// The other lock: the git sources and every other crate of the first.
	lf, err := lockfile.Parse("Cargo.lock", w.lock)
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []lockfile.Package
	for i, p := range lf.Packages {
		if p.Source.Kind == lockfile.Git || i%2 == 0 {
			pkgs = append(pkgs, p)
		}
	}
	part := writeLock(t, fetchtest.Lock(pkgs...))
	goldens := map[*lockfile.File]string{}
	for _, l := range []*lockfile.File{full, part} {
		goldens[l], _ = prefetchIn(t, w.cacheOptions(t.TempDir(), nil), l)
	}
	if goldens[full] == goldens[part] {
		t.Fatal("the two locks have one hash")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// A cache of many packs, which the processes compact as they close
	// while the other may still read them.
	packed := t.TempDir()
	prefetchIn(t, w.cacheOptions(packed, nil), full)
	packs, _ := filepath.Glob(filepath.Join(packed, "packs", "*.pack"))
	if len(packs) != 1 {
		t.Fatalf("packs %v, want one", packs)
	}
	data, err := os.ReadFile(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := os.WriteFile(filepath.Join(packed, "packs", fmt.Sprintf("%016x.pack", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, pair := range []struct {
		name string
		a, b *lockfile.File
		from string // the cache to start from: a copy of it
	}{{"same-lock", full, full, ""}, {"overlapping-locks", full, part, ""}, {"compacting", full, part, packed}} {
		for round := range 3 {
			t.Run(fmt.Sprintf("%s/%d", pair.name, round), func(t *testing.T) {
				cache := t.TempDir()
				if pair.from != "" {
					if err := os.CopyFS(cache, os.DirFS(pair.from)); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				hashes, errs := make([]string, 2), make([]error, 2)
				for i, l := range []*lockfile.File{pair.a, pair.b} {
					wg.Go(func() { hashes[i], errs[i] = runHelper(w.helper(ctx, t, cache, l)) })
				}
				wg.Wait()
				for i, l := range []*lockfile.File{pair.a, pair.b} {
					if errs[i] != nil {
						t.Errorf("process %d: %v", i, errs[i])
					} else if hashes[i] != goldens[l] {
						t.Errorf("process %d: cargoHash %s, want %s", i, hashes[i], goldens[l])
					}
				}
				if pair.from != "" {
					// Each pack merged or left for a holder: never one lost.
					got, _ := prefetchIn(t, w.cacheOptions(cache, nil), full)
					if packs, _ := filepath.Glob(filepath.Join(cache, "packs", "*.pack")); got != goldens[full] || len(packs) > 3 {
						t.Errorf("after: cargoHash %s, %d packs (want at most 3)", got, len(packs))
					}
				}
			})
		}
	}
}
