package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

// newTestFetcher returns a Fetcher with tiny retry waits, no CARGO_HOME, a
// cache in a test directory unless opts says otherwise, and its log in the
// test log.
func newTestFetcher(t *testing.T, opts Options) *Fetcher {
	t.Helper()
	if opts.CacheDir == "" && !opts.NoCache {
		opts.CacheDir = t.TempDir()
	}
	if opts.CargoHome == "" {
		opts.NoCargoHome = true
	}
	if opts.RetryWaitMin == 0 {
		opts.RetryWaitMin = time.Millisecond
		opts.RetryWaitMax = 5 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = testLog{t}
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "cargohash/test"
	}
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

type testLog struct{ t *testing.T }

// fetchAll fetches pkgs with f, jobs at a time, as a session does.
func fetchAll(t *testing.T, f *Fetcher, jobs int, pkgs []lockfile.Package) {
	t.Helper()
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(jobs)
	for _, p := range pkgs {
		g.Go(func() error {
			_, err := f.Crate(ctx, p)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// checkFile fails unless path holds data, mode 0644.
func checkFile(t *testing.T, path string, data []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("%s: %d bytes differ from the crate's %d", path, len(got), len(data))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("%s: mode %v, want 0644", path, fi.Mode())
	}
}

// onlyEntries fails unless dir holds exactly the named files (no temporary
// leftovers).
func onlyEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if fmt.Sprint(got) != fmt.Sprint(names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func TestCrate(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	data := fetchtest.Crate("serde", "1.0.197", map[string]string{"src/lib.rs": "pub fn f() {}\n"})
	pkg := reg.Add("serde", "1.0.197", data)
	cache := t.TempDir()
	var events []Event
	var mu sync.Mutex
	f := newTestFetcher(t, Options{CacheDir: cache, Progress: func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}})
	path, err := f.Crate(context.Background(), pkg)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, "crates", "1220"+pkg.Checksum); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	checkFile(t, path, data)
	onlyEntries(t, filepath.Join(cache, "crates"), "1220"+pkg.Checksum)
	if got := reg.UserAgents(); fmt.Sprint(got) != "[cargohash/test]" {
		t.Errorf("User-Agents %q", got)
	}
	if n := reg.Requests(reg.CratePath("serde", "1.0.197")); n != 1 {
		t.Errorf("%d requests for the crate, want 1", n)
	}
	if first, last := events[0], events[len(events)-1]; first.Kind != Started || last.Kind != Done || last.From != FromNetwork || last.Bytes != int64(len(data)) {
		t.Errorf("events %+v", events)
	}
	for _, e := range events[1 : len(events)-1] {
		if e.Kind != Progress || e.Size != int64(len(data)) || e.Crate != "serde@1.0.197" {
			t.Errorf("event %+v", e)
		}
	}

	// Open gives the same bytes.
	rc, size, err := f.Open(context.Background(), pkg)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Errorf("Open: %d bytes, size %d", len(got), size)
	}

	// A second run with the same cache makes no request.
	before := reg.TotalRequests()
	events = nil
	f2 := newTestFetcher(t, Options{CacheDir: cache, Offline: true, Progress: func(e Event) { events = append(events, e) }})
	path2, err := f2.Crate(context.Background(), pkg)
	if err != nil || path2 != path {
		t.Fatalf("cached: %s, %v", path2, err)
	}
	if n := reg.TotalRequests() - before; n != 0 {
		t.Errorf("cache hit made %d requests", n)
	}
	if len(events) != 1 || events[0].Kind != Done || events[0].From != FromCache {
		t.Errorf("cache hit events %+v", events)
	}

	// A corrupt entry is never returned: it is fetched again, and replaced
	// by the rename of the new file (see TestStoreDamage).
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f2.Crate(context.Background(), pkg); !errors.Is(err, ErrOffline) {
		t.Errorf("corrupt entry offline: %v, want ErrOffline", err)
	}
	if err := os.WriteFile(path, append(data[:len(data):len(data)], 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Crate(context.Background(), pkg); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, data)
	if n := reg.Requests(reg.CratePath("serde", "1.0.197")); n != 2 {
		t.Errorf("%d requests for the crate, want 2", n)
	}
}

func TestNoCache(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	data := fetchtest.Crate("log", "0.4.21", nil)
	pkg := reg.Add("log", "0.4.21", data)
	for _, opts := range []Options{{NoCache: true, CacheDir: t.TempDir()}, {NoCache: true}} {
		f := newTestFetcher(t, opts)
		path, err := f.Crate(context.Background(), pkg)
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, data)
		if opts.CacheDir != "" {
			onlyEntries(t, opts.CacheDir)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Close left %s: %v", path, err)
		}
	}
}

func TestCargoHome(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	data := fetchtest.Crate("anyhow", "1.0.86", nil)
	pkg := reg.Add("anyhow", "1.0.86", data)
	path := reg.CratePath("anyhow", "1.0.86")

	home := t.TempDir()
	dir := filepath.Join(home, "registry", "cache")
	write := func(sub string, b []byte) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, sub, "anyhow-1.0.86.crate"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A wrong copy in one registry directory is passed over, the right one
	// in another is used.
	write("a-wrong", []byte("not the crate"))
	write("index.crates.io-6f17d22bba15001f", data)

	for _, offline := range []bool{false, true} {
		var from Origin
		f := newTestFetcher(t, Options{CargoHome: home, Offline: offline, Progress: func(e Event) {
			if e.Kind == Done {
				from = e.From
			}
		}})
		got, err := f.Crate(context.Background(), pkg)
		if err != nil {
			t.Fatal(err)
		}
		checkFile(t, got, data)
		if from != FromCargoHome {
			t.Errorf("offline=%v: from %q", offline, from)
		}
	}
	if n := reg.Requests(path); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "a-wrong", "anyhow-1.0.86.crate")); string(b) != "not the crate" {
		t.Error("CARGO_HOME was modified")
	}

	// Only wrong copies: downloaded.
	write("index.crates.io-6f17d22bba15001f", []byte("truncated"))
	f := newTestFetcher(t, Options{CargoHome: home})
	if _, err := f.Crate(context.Background(), pkg); err != nil {
		t.Fatal(err)
	}
	if n := reg.Requests(path); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestOfflineMiss(t *testing.T) {
	pkg := fetchtest.CratesIO("serde", "1.0.197", []byte("x"))
	f := newTestFetcher(t, Options{Offline: true, CargoHome: t.TempDir()})
	_, err := f.Crate(context.Background(), pkg)
	if !errors.Is(err, ErrOffline) || !errors.Is(err, ErrFetch) {
		t.Fatalf("err = %v, want ErrOffline and ErrFetch", err)
	}
	want := "serde@1.0.197: GET https://static.crates.io/crates/serde/1.0.197/download: not in the cache and offline"
	if err.Error() != want {
		t.Errorf("err = %q\nwant  %q", err, want)
	}
}

func TestMirror(t *testing.T) {
	dir := t.TempDir()
	crates := []fetchtest.CrateData{
		{Name: "serde", Version: "1.0.197", Data: fetchtest.Crate("serde", "1.0.197", nil)},
		{Name: "cc", Version: "1.0.0", Data: fetchtest.Crate("cc", "1.0.0", nil)},
	}
	dl, pkgs, err := fetchtest.WriteMirror(dir, crates)
	if err != nil {
		t.Fatal(err)
	}
	// The same crates, named as crates.io crates, served by --registry-dl
	// crates-io=file://…; and as a sparse+file:// registry whose config.json
	// is read from the mirror.
	for _, offline := range []bool{false, true} {
		for i, c := range crates {
			f := newTestFetcher(t, Options{Offline: offline, DL: map[string]string{CratesIOAlias: dl}})
			path, err := f.Crate(context.Background(), fetchtest.CratesIO(c.Name, c.Version, c.Data))
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, c.Data)

			f = newTestFetcher(t, Options{Offline: offline})
			path, err = f.Crate(context.Background(), pkgs[i])
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, c.Data)
		}
	}

	// A crate missing from the mirror, or different there.
	f := newTestFetcher(t, Options{DL: map[string]string{CratesIOAlias: dl}})
	_, err = f.Crate(context.Background(), fetchtest.CratesIO("rand", "0.8.5", []byte("x")))
	if !errors.Is(err, ErrFetch) || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "rand-0.8.5.crate: no such file") {
		t.Errorf("missing: %v", err)
	}
	_, err = f.Crate(context.Background(), fetchtest.CratesIO("cc", "1.0.0", []byte("other")))
	var ce *ChecksumError
	if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "verifying cc@1.0.0: checksum mismatch") {
		t.Errorf("mismatch: %v", err)
	}
}

func TestChecksum(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	data := fetchtest.Crate("serde", "1.0.197", nil)
	pkg := reg.Add("serde", "1.0.197", data)
	path := reg.CratePath("serde", "1.0.197")

	tests := []struct {
		name     string
		faults   []fetchtest.Fault
		err      bool
		requests int
	}{
		{"wrong bytes once", []fetchtest.Fault{{Kind: fetchtest.WrongBytes}}, false, 2},
		{"wrong bytes always", []fetchtest.Fault{{Kind: fetchtest.WrongBytes, Times: -1}}, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := reg.Requests(path)
			reg.Inject(path, tt.faults...)
			t.Cleanup(func() { reg.Inject(path) })
			cache := t.TempDir()
			f := newTestFetcher(t, Options{CacheDir: cache})
			got, err := f.Crate(context.Background(), pkg)
			if n := reg.Requests(path) - before; n != tt.requests {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if !tt.err {
				if err != nil {
					t.Fatal(err)
				}
				checkFile(t, got, data)
				return
			}
			wrong := append([]byte(nil), data...)
			wrong[len(wrong)/2] ^= 0xff
			want := "verifying serde@1.0.197: checksum mismatch\n\tdownloaded: " + fetchtest.Checksum(wrong) + "\n\tCargo.lock: " + pkg.Checksum
			if err == nil || err.Error() != want {
				t.Fatalf("err = %v\nwant  %s", err, want)
			}
			var ce *ChecksumError
			if !errors.As(err, &ce) || errors.Is(err, ErrFetch) {
				t.Errorf("err %T: want a *ChecksumError, not ErrFetch", err)
			}
			onlyEntries(t, filepath.Join(cache, "crates"))
		})
	}
	reg.Inject(path, fetchtest.Fault{Kind: fetchtest.WrongBytes, Times: -1})
}

func TestBadChecksum(t *testing.T) {
	f := newTestFetcher(t, Options{})
	for _, sum := range []string{"", "abc", strings.Repeat("A", 64), strings.Repeat("g", 64)} {
		pkg := fetchtest.CratesIO("serde", "1.0.0", nil)
		pkg.Checksum = sum
		_, err := f.Crate(context.Background(), pkg)
		if !errors.Is(err, ErrNoChecksum) || !strings.HasPrefix(err.Error(), "serde@1.0.0: ") {
			t.Errorf("checksum %q: %v", sum, err)
		}
	}
	_, err := f.Crate(context.Background(), lockfile.Package{Name: "g", Version: "1.0.0", Source: lockfile.Source{Raw: "git+https://x#abc", Kind: lockfile.Git}})
	if !errors.Is(err, ErrSource) {
		t.Errorf("git source: %v", err)
	}
}

// TestFaults runs one crate download against every kind of server failure.
func TestFaults(t *testing.T) {
	tests := []struct {
		name     string
		faults   []fetchtest.Fault
		retries  int
		requests int
		moreOK   bool   // requests is a minimum
		err      string // "" for success; else the error after "serde@1.0.197: "
		class    error
	}{
		{name: "ok", requests: 1},
		{name: "503 twice", faults: []fetchtest.Fault{{Kind: fetchtest.Status, Status: 503, Times: 2}}, requests: 3},
		{name: "truncated", faults: []fetchtest.Fault{{Kind: fetchtest.Truncate}}, requests: 2},
		{name: "reset", faults: []fetchtest.Fault{{Kind: fetchtest.Reset}}, requests: 2},
		{name: "reset mid-body", faults: []fetchtest.Fault{{Kind: fetchtest.ResetMidBody, Bytes: 10}}, requests: 2},
		{name: "stall", faults: []fetchtest.Fault{{Kind: fetchtest.Stall, Delay: 5 * time.Second}}, requests: 2},
		{name: "slow headers", faults: []fetchtest.Fault{{Kind: fetchtest.Delay, Delay: 5 * time.Second}}, requests: 2},
		{name: "each once", faults: []fetchtest.Fault{
			{Kind: fetchtest.Status, Status: 500}, {Kind: fetchtest.Status, Status: 429},
			{Kind: fetchtest.Truncate}, {Kind: fetchtest.Reset}, {Kind: fetchtest.Stall, Delay: 5 * time.Second},
			{Kind: fetchtest.WrongBytes},
		}, retries: 6, requests: 7},
		{name: "404", faults: []fetchtest.Fault{{Kind: fetchtest.Status, Status: 404, Times: -1}}, requests: 1,
			err: "GET {url}: 404 Not Found: fetchtest: injected 404", class: ErrFetch},
		{name: "403", faults: []fetchtest.Fault{{Kind: fetchtest.Status, Status: 403, Times: -1}}, requests: 1,
			err: "GET {url}: 403 Forbidden: fetchtest: injected 403", class: ErrFetch},
		{name: "500 forever", faults: []fetchtest.Fault{{Kind: fetchtest.Status, Status: 500, Times: -1}}, retries: 3, requests: 4,
			err: "GET {url}: 500 Internal Server Error: fetchtest: injected 500 (gave up after 4 attempts)", class: ErrFetch},
		// net/http itself retries a GET once on a fresh connection when a
		// reused one is reset before the response: 3 or 4 requests.
		{name: "reset forever", faults: []fetchtest.Fault{{Kind: fetchtest.Reset, Times: -1}}, retries: 2, requests: 3, moreOK: true,
			err: "GET {url}: ", class: ErrFetch},
		{name: "truncated forever", faults: []fetchtest.Fault{{Kind: fetchtest.Truncate, Times: -1}}, retries: 2, requests: 3,
			err: "GET {url}: unexpected EOF (gave up after 3 attempts)", class: ErrFetch},
		{name: "stall forever", faults: []fetchtest.Fault{{Kind: fetchtest.Stall, Delay: 5 * time.Second, Times: -1}}, retries: 1, requests: 2,
			err: "GET {url}: no data for 250ms: transfer stalled (gave up after 2 attempts)", class: ErrStalled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
			data := fetchtest.Crate("serde", "1.0.197", map[string]string{"src/lib.rs": strings.Repeat("// padding\n", 1000)})
			pkg := reg.Add("serde", "1.0.197", data)
			path := reg.CratePath("serde", "1.0.197")
			reg.Inject(path, tt.faults...)
			cache := t.TempDir()
			f := newTestFetcher(t, Options{CacheDir: cache, Retries: tt.retries, StallTimeout: 250 * time.Millisecond})
			start := time.Now()
			got, err := f.Crate(context.Background(), pkg)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			if n := reg.Requests(path); n != tt.requests && !(tt.moreOK && n > tt.requests) {
				t.Errorf("%d requests, want %d", n, tt.requests)
			}
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				checkFile(t, got, data)
				return
			}
			want := "serde@1.0.197: " + strings.ReplaceAll(tt.err, "{url}", reg.CrateURL("serde", "1.0.197"))
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v\nwant  %s…", err, want)
			}
			if !errors.Is(err, tt.class) || !errors.Is(err, ErrFetch) {
				t.Errorf("err is not %v", tt.class)
			}
			onlyEntries(t, filepath.Join(cache, "crates"))
		})
	}
}

// TestManyCrates fetches many crates at once, the first two requests of each
// answered 503, through one Fetcher from an errgroup as the orchestrator
// does.
func TestManyCrates(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{DL: "/crates/{prefix}/{crate}/{crate}-{version}.crate", Latency: time.Millisecond})
	var pkgs []lockfile.Package
	for i := range 40 {
		name := fmt.Sprintf("crate%d", i)
		pkgs = append(pkgs, reg.AddCrate(name, "0.1.0", nil))
		reg.Inject(reg.CratePath(name, "0.1.0"), fetchtest.Fault{Kind: fetchtest.Status, Status: 503, Times: 2})
	}
	reg.Inject(reg.ConfigPath(), fetchtest.Fault{Kind: fetchtest.Status, Status: 503, Times: 2})
	fetchAll(t, newTestFetcher(t, Options{Jobs: 8}), 8, pkgs)
	for _, p := range pkgs {
		if n := reg.Requests(reg.CratePath(p.Name, p.Version)); n != 3 {
			t.Errorf("%s: %d requests, want 3", p.ID(), n)
		}
	}
	if n := reg.Requests(reg.ConfigPath()); n != 3 {
		t.Errorf("config.json: %d requests, want 3", n)
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter string
		max        time.Duration
		min, most  time.Duration
	}{
		{"honoured", "1", time.Minute, 900 * time.Millisecond, 3 * time.Second},
		{"bounded", "3600", 50 * time.Millisecond, 0, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
			pkg := reg.AddCrate("rand", "0.8.5", nil)
			path := reg.CratePath("rand", "0.8.5")
			reg.Inject(path, fetchtest.Fault{Kind: fetchtest.Status, Status: 429, RetryAfter: tt.retryAfter})
			f := newTestFetcher(t, Options{RetryAfterMax: tt.max})
			start := time.Now()
			if _, err := f.Crate(context.Background(), pkg); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d < tt.min || d > tt.most {
				t.Errorf("took %v, want %v to %v", d, tt.min, tt.most)
			}
			if n := reg.Requests(path); n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"Mon, 01 Jan 2024 00:00:30 GMT", 30 * time.Second, true},
		{"Sun, 31 Dec 2023 23:59:00 GMT", 0, true},
		{"99999999999", 24 * time.Hour, true},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	b := backoffFunc(time.Minute)
	for attempt := range 10 {
		d := b(100*time.Millisecond, 2*time.Second, attempt, nil)
		base := min(100*time.Millisecond<<attempt, 2*time.Second)
		if d < base/2 || d > base {
			t.Errorf("attempt %d: %v, want %v to %v", attempt, d, base/2, base)
		}
	}
}

// TestCancel cancels many stalled downloads and checks that every call
// returns promptly and no goroutine is left behind.
func TestCancel(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	var pkgs []lockfile.Package
	for i := range 20 {
		name := fmt.Sprintf("slow%d", i)
		pkgs = append(pkgs, reg.AddCrate(name, "1.0.0", nil))
		kind := fetchtest.Stall
		if i%2 == 1 {
			kind = fetchtest.Delay // no headers at all
		}
		reg.Inject(reg.CratePath(name, "1.0.0"), fetchtest.Fault{Kind: kind, Delay: 10 * time.Second, Times: -1})
	}
	// One more answers 503 forever with a long backoff: cancelled while
	// waiting to retry.
	pkgs = append(pkgs, reg.AddCrate("busy", "1.0.0", nil))
	reg.Inject(reg.CratePath("busy", "1.0.0"), fetchtest.Fault{Kind: fetchtest.Status, Status: 503, Times: -1})

	before := runtime.NumGoroutine()
	f, err := New(Options{CacheDir: t.TempDir(), NoCargoHome: true, RetryWaitMin: 10 * time.Second, StallTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(len(pkgs))
	for _, p := range pkgs {
		g.Go(func() error {
			_, err := f.Crate(gctx, p)
			return err
		})
	}
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	cancel()
	err = g.Wait()
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancel took %v", d)
	}
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrFetch) {
		t.Errorf("err = %v, want context.Canceled only", err)
	}
	// Dials that a cancelled request started may still finish and park
	// their connection in the idle pool: close idle connections until the
	// count settles.
	deadline := time.Now().Add(3 * time.Second)
	for f.Close(); runtime.NumGoroutine() > before && time.Now().Before(deadline); f.Close() {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// TestErrorBody checks that at most 64 KiB of an error response is read
// and that URLs in errors are redacted.
func TestErrorBody(t *testing.T) {
	var served int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		for range 64 { // 4 MiB
			n, err := w.Write(bytes.Repeat([]byte("x"), 64<<10))
			served += int64(n)
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	u := strings.Replace(srv.URL, "http://", "http://user:s3cret@", 1) + "/{crate}?token=s3cret"
	f := newTestFetcher(t, Options{DL: map[string]string{CratesIOAlias: u}})
	_, err := f.Crate(context.Background(), fetchtest.CratesIO("serde", "1.0.0", []byte("x")))
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 403 || len(he.Body) != 64<<10 {
		t.Fatalf("err = %T %v", err, err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("secret in %q", err)
	}
	want := "serde@1.0.0: GET " + strings.Replace(srv.URL, "http://", "http://REDACTED@", 1) + "/serde?token=REDACTED: 403 Forbidden: " + strings.Repeat("x", 200) + "…"
	if err.Error() != want {
		t.Errorf("err = %s\nwant  %s", err, want)
	}
}

func TestLog(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	pkg := reg.AddCrate("log", "0.4.0", nil)
	reg.Inject(reg.CratePath("log", "0.4.0"), fetchtest.Fault{Kind: fetchtest.Status, Status: 502})
	var buf bytes.Buffer
	f := newTestFetcher(t, Options{Log: &buf})
	if _, err := f.Crate(context.Background(), pkg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "retrying") {
		t.Errorf("log lacks the retry:\n%s", buf.String())
	}

	// URLs in the log are redacted.
	buf.Reset()
	reg.Inject(reg.CratePath("log", "0.4.0"), fetchtest.Fault{Kind: fetchtest.Status, Status: 502})
	secret := strings.Replace(reg.URL, "http://", "http://user:s3cret@", 1) + "/api/v1/crates/{crate}/{version}/download?token=s3cret"
	f = newTestFetcher(t, Options{Log: &buf, DL: map[string]string{pkg.Source.Raw: secret}})
	if _, err := f.Crate(context.Background(), pkg); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "s3cret") || !strings.Contains(buf.String(), "token=REDACTED") {
		t.Errorf("log not redacted:\n%s", buf.String())
	}
}

func TestDefaultCacheDir(t *testing.T) {
	home := t.TempDir()
	tests := []struct{ xdg, home, want string }{
		{"/x/cache", home, "/x/cache/cargohash"},
		{"", home, filepath.Join(home, ".cache", "cargohash")},
		{"relative", home, filepath.Join(home, ".cache", "cargohash")},
		{"", "/homeless-shelter", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		t.Setenv("XDG_CACHE_HOME", tt.xdg)
		t.Setenv("HOME", tt.home)
		if got := DefaultCacheDir(); got != tt.want {
			t.Errorf("XDG_CACHE_HOME=%q HOME=%q: %q, want %q", tt.xdg, tt.home, got, tt.want)
		}
	}
}

func TestCertEnv(t *testing.T) {
	t.Setenv("NIX_SSL_CERT_FILE", filepath.Join(t.TempDir(), "missing.crt"))
	if _, err := New(Options{NoCargoHome: true}); err == nil || !strings.Contains(err.Error(), "NIX_SSL_CERT_FILE") {
		t.Errorf("missing cert file: %v", err)
	}
	empty := filepath.Join(t.TempDir(), "empty.crt")
	os.WriteFile(empty, []byte("no pem here"), 0o644)
	t.Setenv("NIX_SSL_CERT_FILE", "")
	t.Setenv("SSL_CERT_FILE", empty)
	if _, err := New(Options{NoCargoHome: true}); err == nil || !strings.Contains(err.Error(), "SSL_CERT_FILE: no certificates") {
		t.Errorf("empty cert file: %v", err)
	}
}

func TestRetryEvents(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{})
	pkg := reg.AddCrate("serde", "1.0.0", map[string]string{"src/lib.rs": strings.Repeat("// padding\n", 1000)})
	reg.Inject(reg.CratePath("serde", "1.0.0"),
		fetchtest.Fault{Kind: fetchtest.Status, Status: 503},
		fetchtest.Fault{Kind: fetchtest.Truncate},
		fetchtest.Fault{Kind: fetchtest.WrongBytes},
	)
	var got []string
	f := newTestFetcher(t, Options{Progress: func(e Event) {
		if e.Kind == Retrying {
			got = append(got, fmt.Sprintf("%s attempt %d: %v", e.Crate, e.Attempt, e.Err))
		}
	}})
	if _, err := f.Crate(context.Background(), pkg); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"serde@1.0.0 attempt 2: 503 Service Unavailable",
		"serde@1.0.0 attempt 3: GET " + reg.CrateURL("serde", "1.0.0") + ": unexpected EOF",
		"serde@1.0.0 attempt 4: checksum mismatch",
	}
	if len(got) != len(want) {
		t.Fatalf("Retrying events:\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("event %d: %q, want %q…", i, got[i], want[i])
		}
	}
}
