package git

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
)

// BenchmarkCheckoutLatency checks out 10 distinct repositories (20 files, 3
// commits each, the middle one locked) over smart HTTP with 20 ms added to
// every request, without a cache: one repository alone (the time of the
// slowest one), all ten one after the other, and all ten at once as a
// session fetches them (up to 16 at once):
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
	srv := serve(b, root, true, 20*time.Millisecond)

	run := func(b *testing.B, n, limit int) {
		for b.Loop() {
			out := b.TempDir()
			g, ctx := errgroup.WithContext(context.Background())
			g.SetLimit(limit)
			for i := range n {
				g.Go(func() error {
					f := &Fetcher{}
					return f.Checkout(ctx, srv.url(fmt.Sprintf("r%d", i)), commits[i], filepath.Join(out, fmt.Sprint(i)))
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(srv.requests.Load())/float64(b.N)/float64(n), "requests/repo")
		srv.requests.Store(0)
	}
	b.Run("one", func(b *testing.B) { run(b, 1, 1) })
	b.Run("sequential", func(b *testing.B) { run(b, repos, 1) })
	b.Run("concurrent", func(b *testing.B) { run(b, repos, 16) })
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
			if err := s.verify(ctx, repoPath(s.cacheDir, url), commit); err != nil {
				b.Fatal(err)
			}
		}
	})
}
