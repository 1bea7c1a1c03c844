package git

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// BenchmarkCheckoutLatency checks out 10 distinct repositories (20 files, 3
// commits each, the middle one locked) over smart HTTP (plain HTTP/1.1,
// git http-backend as CGI) with 20 ms added to every request, without a
// cache: one repository alone (the time of the slowest one), all ten one
// after the other, and all ten at once as a session fetches them (up to 16
// at once). The server runs in a process of its own (this test binary,
// re-executed) so that the CPU time of both sides can be told apart: per
// repository, cpu-client-ms is ours and our git processes', cpu-server-ms
// the server's (git http-backend, upload-pack, pack-objects), which on a
// real network is someone else's machine; x-one is the wall time against
// one repository alone.
//
//	go test ./fetch/git -run '^$' -bench CheckoutLatency -benchtime 3x
func BenchmarkCheckoutLatency(b *testing.B) {
	base := b.TempDir()
	env := testEnv(filepath.Join(base, "home"))
	os.MkdirAll(filepath.Join(base, "home"), 0o755)
	root := filepath.Join(base, "served")
	const repos = 10
	commits := make([]string, repos)
	for i := range repos {
		w := newWorkRepo(b, env, filepath.Join(base, "work", fmt.Sprint(i)))
		files := map[string]file{}
		for j := range 20 {
			files[fmt.Sprintf("src/f%02d.rs", j)] = file{content: fmt.Sprintf("// repo %d file %d\npub fn f() {}\n", i, j)}
		}
		w.commit("one", files)
		commits[i] = w.commit("two", map[string]file{"README.md": {content: fmt.Sprintf("repo %d\n", i)}})
		w.commit("three", map[string]file{"README.md": {content: fmt.Sprintf("repo %d, later\n", i)}})
		runGit(b, env, base, "clone", "--quiet", "--bare", w.dir, filepath.Join(root, fmt.Sprintf("r%d.git", i)))
	}
	srv := serveProcess(b, root, 20*time.Millisecond, false)
	replayed := serveProcess(b, root, 20*time.Millisecond, true)

	var one time.Duration
	run := func(b *testing.B, srv *serverProcess, n, limit int) {
		requests, server := srv.stats(b)
		client := clientCPU()
		for b.Loop() {
			out := b.TempDir()
			g, ctx := errgroup.WithContext(context.Background())
			g.SetLimit(limit)
			f := &Fetcher{} // one for all, as a session has
			for i := range n {
				g.Go(func() error {
					return f.Checkout(ctx, srv.url+fmt.Sprintf("/r%d.git", i), commits[i], filepath.Join(out, fmt.Sprint(i)))
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		perOp := b.Elapsed() / time.Duration(b.N)
		if n == 1 {
			one = perOp
		}
		if one > 0 {
			b.ReportMetric(float64(perOp)/float64(one), "x-one")
		}
		requests2, server2 := srv.stats(b)
		per := float64(b.N * n)
		b.ReportMetric(float64(requests2-requests)/per, "requests/repo")
		b.ReportMetric((clientCPU()-client).Seconds()*1000/per, "cpu-client-ms/repo")
		b.ReportMetric((server2-server).Seconds()*1000/per, "cpu-server-ms/repo")
	}
	b.Run("one", func(b *testing.B) { run(b, srv, 1, 1) })
	b.Run("sequential", func(b *testing.B) { run(b, srv, repos, 1) })
	b.Run("concurrent", func(b *testing.B) { run(b, srv, repos, 16) })
	// The same with the server's answers recorded (by a first pass of all
	// ten) and replayed: what the client and the network take when the
	// server's work is on another machine, as it is outside this benchmark.
	one = 0
	b.Run("replayed-record", func(b *testing.B) { run(b, replayed, repos, 16) })
	b.Run("replayed-one", func(b *testing.B) { run(b, replayed, 1, 1) })
	b.Run("replayed-concurrent", func(b *testing.B) { run(b, replayed, repos, 16) })
}

// replay answers a request it has seen before (method, URL, Git-Protocol
// and body alike) with the answer next gave the first time.
func replay(next http.Handler) http.Handler {
	type answer struct {
		status int
		header http.Header
		body   []byte
	}
	var mu sync.Mutex
	seen := map[string]*answer{}
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		key := r.Method + " " + r.URL.String() + " " + r.Header.Get("Git-Protocol") + " " + string(body)
		mu.Lock()
		a := seen[key]
		mu.Unlock()
		if a == nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			a = &answer{rec.Code, rec.Header(), rec.Body.Bytes()}
			mu.Lock()
			seen[key] = a
			mu.Unlock()
		}
		maps.Copy(rw.Header(), a.header)
		rw.WriteHeader(a.status)
		rw.Write(a.body)
	})
}

// clientCPU is the CPU time of this process and of its children that have
// ended (so not of the server process, which runs until the benchmark ends).
func clientCPU() time.Duration {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	d := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return d(self.Utime) + d(self.Stime) + d(children.Utime) + d(children.Stime)
}

// serverProcess is serve's server in a child process (TestHelperServe).
type serverProcess struct {
	url string
	cmd *exec.Cmd
	in  io.Writer
	out *bufio.Reader
}

func serveProcess(b *testing.B, root string, delay time.Duration, replayed bool) *serverProcess {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServe$")
	cmd.Env = append(os.Environ(), "CARGOHASH_GIT_SERVE="+root+"\n"+delay.String()+"\n"+strconv.FormatBool(replayed))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	s := &serverProcess{cmd: cmd, in: in, out: bufio.NewReader(out)}
	url, err := s.out.ReadString('\n')
	if err != nil {
		b.Fatalf("server process: %v", err)
	}
	s.url = strings.TrimSpace(url)
	return s
}

// stats returns how many requests the server has served and the CPU time
// it and its ended children (the CGI processes) have used.
func (s *serverProcess) stats(b *testing.B) (requests int64, cpu time.Duration) {
	fmt.Fprintln(s.in, "requests")
	line, err := s.out.ReadString('\n')
	if err != nil {
		b.Fatalf("server process: %v", err)
	}
	requests, _ = strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's name: utime, stime, cutime and cstime are
	// the 14th to 17th of the line, in clock ticks (100 a second on Linux).
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	for _, v := range f[11:15] {
		ticks, _ := strconv.ParseInt(v, 10, 64)
		cpu += time.Duration(ticks) * 10 * time.Millisecond
	}
	return requests, cpu
}

// TestHelperServe is BenchmarkCheckoutLatency's server process; it does
// nothing unless CARGOHASH_GIT_SERVE says what to serve. It prints the URL,
// then the number of requests served for each line read, until stdin ends.
func TestHelperServe(t *testing.T) {
	args := strings.Split(os.Getenv("CARGOHASH_GIT_SERVE"), "\n")
	if len(args) != 3 {
		return
	}
	d, err := time.ParseDuration(args[1])
	if err != nil {
		t.Fatal(err)
	}
	var url string
	var requests *atomic.Int64
	if args[2] == "true" {
		backend := serve(t, args[0], true, 0)
		requests = new(atomic.Int64)
		answers := replay(backend.Config.Handler)
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			time.Sleep(d)
			answers.ServeHTTP(rw, r)
		}))
		t.Cleanup(srv.Close)
		url = srv.URL
	} else {
		srv := serve(t, args[0], true, d)
		url, requests = srv.URL, &srv.requests
	}
	fmt.Println(url)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		fmt.Println(requests.Load())
	}
}

// BenchmarkWarmCheckout checks out, from a warm cache, a commit of about
// 2,500 files and 30 MB (Debian's vendored crate sources and Go's
// net and crypto packages, whichever are installed), and reports what the
// verification of the cached objects (verify) costs against the whole
// checkout it protects:
//
//	go test ./fetch/git -run '^$' -bench WarmCheckout -benchtime 5x
func BenchmarkWarmCheckout(b *testing.B) {
	base := b.TempDir()
	env := testEnv(filepath.Join(base, "home"))
	os.MkdirAll(filepath.Join(base, "home"), 0o755)
	w := newWorkRepo(b, env, filepath.Join(base, "work"))
	goroot, _ := exec.Command("go", "env", "GOROOT").Output()
	gosrc := filepath.Join(strings.TrimSpace(string(goroot)), "src")
	for i, src := range []string{"/usr/share/cargo/registry", filepath.Join(gosrc, "net"), filepath.Join(gosrc, "crypto")} {
		if _, err := os.Stat(src); err != nil {
			continue
		}
		if err := os.CopyFS(filepath.Join(w.dir, fmt.Sprint(i)), os.DirFS(src)); err != nil {
			b.Fatal(err)
		}
	}
	w.git("add", "-A")
	commit := w.commit("tree", nil)
	bare := filepath.Join(base, "served.git")
	runGit(b, env, base, "clone", "--quiet", "--bare", w.dir, bare)
	url := "file://" + bare
	f := &Fetcher{CacheDir: filepath.Join(base, "cache")}
	ctx := context.Background()
	if err := f.Checkout(ctx, url, commit, filepath.Join(base, "first")); err != nil {
		b.Fatal(err)
	}
	b.Run("checkout", func(b *testing.B) {
		for b.Loop() {
			dest := filepath.Join(b.TempDir(), "out")
			if err := f.Checkout(ctx, url, commit, dest); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		s, err := f.newSession()
		if err != nil {
			b.Fatal(err)
		}
		defer s.close()
		for b.Loop() {
			if _, err := s.verify(ctx, repoPath(s.cacheDir, url), commit, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
