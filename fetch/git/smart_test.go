package git

import (
	"bytes"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loggingGit is a git that logs each of its subcommands, a line each, to
// the file it returns.
func loggingGit(t *testing.T) (gitPath, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "log")
	gitPath = filepath.Join(dir, "git")
	script := "#!/bin/sh\nfor a; do case $a in -c) skip=1;; *) if [ -z \"$skip\" ]; then echo \"$a\" >> " + log + "; break; fi; skip=;; esac; done\nexec git \"$@\"\n"
	if err := os.WriteFile(gitPath, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return gitPath, log
}

func subcommands(t *testing.T, log string) []string {
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// TestCheckoutInProcess: over smart HTTP with protocol version 2 the fetch
// is this process's (no git fetch runs), for the commit, its submodules and
// a later commit fetched into the same repository; the trees are the
// reference's and git finds the cache sound (fsck, shallow).
func TestCheckoutInProcess(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	srv := serve(t, w.root, true, 0)
	gitPath, log := loggingGit(t)
	cache := t.TempDir()
	f := &Fetcher{CacheDir: cache, Git: gitPath}
	url := srv.url("main")
	for _, c := range []string{"M3", "F1"} {
		dest := filepath.Join(t.TempDir(), "out")
		if err := f.Checkout(testCtx(t), url, w.commits[c], dest); err != nil {
			t.Fatal(err)
		}
		ref, err := referenceTree(t, url, w.commits[c], false)
		if err != nil {
			t.Fatal(err)
		}
		assertSameTree(t, dest, ref)
	}
	for _, sub := range subcommands(t, log) {
		if sub == "fetch" {
			t.Fatalf("git fetch ran: %q", subcommands(t, log))
		}
	}
	env := testEnv(t.TempDir())
	repo := repoPath(cache, url)
	runGit(t, env, repo, "--git-dir=.", "fsck", "--strict", "--no-dangling")
	if s := runGit(t, env, repo, "--git-dir=.", "rev-parse", "--is-shallow-repository"); s != "true" {
		t.Errorf("is-shallow-repository: %s", s)
	}
	for _, c := range []string{"M3", "F1"} {
		if got := runGit(t, env, repo, "--git-dir=.", "rev-parse", "refs/cargohash/"+w.commits[c]); got != w.commits[c] {
			t.Errorf("refs/cargohash/%s = %s", w.commits[c], got)
		}
	}
	// A submodule's repository went the same way.
	subRepo := repoPath(cache, srv.url("sub"))
	runGit(t, env, subRepo, "--git-dir=.", "fsck", "--strict", "--no-dangling")
}

// TestCheckoutInProcessHTTPS: over HTTPS and HTTP/2, with the server's
// certificate trusted through NIX_GIT_SSL_CAINFO as git is told, the fetch is
// in process and the tree the one fetched over HTTP.
func TestCheckoutInProcessHTTPS(t *testing.T) {
	w := newWorld(t)
	plain := serve(t, w.root, true, 0)
	tlsSrv := httptest.NewUnstartedServer(plain.Config.Handler)
	tlsSrv.EnableHTTP2 = true
	var protos []string
	inner := tlsSrv.Config.Handler
	tlsSrv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		protos = append(protos, r.Proto)
		inner.ServeHTTP(rw, r)
	})
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NIX_GIT_SSL_CAINFO", ca)
	gitPath, log := loggingGit(t)
	f := &Fetcher{Git: gitPath}
	got, want := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "out")
	commit := w.commits["F1"]
	if err := f.Checkout(testCtx(t), tlsSrv.URL+"/main.git", commit, got); err != nil {
		t.Fatal(err)
	}
	if err := (&Fetcher{}).Checkout(testCtx(t), plain.url("main"), commit, want); err != nil {
		t.Fatal(err)
	}
	assertSameTree(t, got, want)
	for _, sub := range subcommands(t, log) {
		if sub == "fetch" {
			t.Fatalf("git fetch ran: %q", subcommands(t, log))
		}
	}
	if len(protos) == 0 || protos[0] != "HTTP/2.0" {
		t.Errorf("requests over %q, want HTTP/2.0", protos)
	}
}

// TestCheckoutFetchFirst: the in-process fetch of a repository is one
// request, the fetch itself. A server that does not answer it as a fetch
// (here one that wants the capabilities asked for first) is asked for
// them, as git asks, and the commit is then fetched in process all the
// same; a refusal in words (ERR) or no HTTP answer at all is not asked
// again, and goes to git at once.
func TestCheckoutFetchFirst(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	v2 := serve(t, w.root, true, 0)
	// record serves v2, keeping the methods of cargohash's requests; a
	// strict one refuses a fetch before the capabilities were asked.
	record := func(strict bool) (*httptest.Server, func() []string) {
		var mu sync.Mutex
		var seen []string
		asked := false
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			mu.Lock()
			ours := r.UserAgent() == "git/cargohash"
			if ours {
				seen = append(seen, r.Method)
			}
			refuse := strict && ours && r.Method == http.MethodPost && !asked
			asked = asked || r.Method == http.MethodGet
			mu.Unlock()
			if refuse {
				http.Error(rw, "capabilities first", http.StatusBadRequest)
				return
			}
			v2.Config.Handler.ServeHTTP(rw, r)
		}))
		t.Cleanup(srv.Close)
		return srv, func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(seen) }
	}
	commit := w.commits["F1"]
	for _, c := range []struct {
		name     string
		strict   bool
		commit   string
		requests []string
	}{
		// F1 has two submodules, fetched after the capabilities were asked.
		{"version 2", false, commit, []string{"POST", "POST", "POST"}},
		{"capabilities first", true, commit, []string{"POST", "GET", "POST", "POST", "POST"}},
		{"refused want", false, strings.Repeat("1234", 10), []string{"POST"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv, seen := record(c.strict)
			gitPath, log := loggingGit(t)
			dest := filepath.Join(t.TempDir(), "out")
			err := (&Fetcher{Git: gitPath}).Checkout(testCtx(t), srv.URL+"/main.git", c.commit, dest)
			if got := seen(); !slices.Equal(got, c.requests) {
				t.Errorf("requests %q, want %q", got, c.requests)
			}
			if c.commit != commit {
				if err == nil || !slices.Contains(subcommands(t, log), "fetch") {
					t.Errorf("a commit the server lacks: %v, git ran %q; want an error after git fetch", err, subcommands(t, log))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(subcommands(t, log), "fetch") {
				t.Errorf("git fetch ran: %q", subcommands(t, log))
			}
			ref, err := referenceTree(t, v2.url("main"), commit, false)
			if err != nil {
				t.Fatal(err)
			}
			assertSameTree(t, dest, ref)
		})
	}
	t.Run("no answer", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		var gets atomic.Int64
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				b := make([]byte, 4)
				if _, err := io.ReadFull(c, b); err == nil && string(b) == "GET " {
					gets.Add(1)
				}
				c.Close()
			}
		}()
		// A git that fails at once, without a connection of its own.
		fake := filepath.Join(t.TempDir(), "git")
		if err := os.WriteFile(fake, []byte("#!/bin/sh\necho no >&2\nexit 128\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		err = (&Fetcher{Git: fake}).Checkout(testCtx(t), "http://"+ln.Addr().String()+"/main.git", commit, filepath.Join(t.TempDir(), "out"))
		if err == nil {
			t.Fatal("checked out from a server that closes every connection")
		}
		if n := gets.Load(); n != 0 {
			t.Errorf("the capabilities were asked for %d times; they would meet the same", n)
		}
	})
}

// TestCheckoutLeftToGit: what the in-process fetch does not handle goes to
// git, which fetches it: a server of protocol version 0, one of the dumb
// protocol, one that refuses the request, and a caller with a proxy set
// (git's proxy support is what the user set up).
func TestCheckoutLeftToGit(t *testing.T) {
	w := newWorld(t)
	v2 := serve(t, w.root, true, 0)
	v0 := serve(t, w.root, false, 0)
	failing := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") == "git/cargohash" {
			http.Error(rw, "no", http.StatusInternalServerError)
			return
		}
		v2.Config.Handler.ServeHTTP(rw, r)
	}))
	t.Cleanup(failing.Close)
	// The dumb protocol: the repository's files as they are, with the
	// lists update-server-info writes.
	for _, name := range []string{"main", "sub", "nested"} {
		runGit(t, testEnv(t.TempDir()), filepath.Join(w.root, name+".git"), "--git-dir=.", "update-server-info")
	}
	dumb := httptest.NewServer(http.FileServer(http.Dir(w.root)))
	t.Cleanup(dumb.Close)
	commit := w.commits["F1"]
	for _, c := range []struct {
		name, url, proxy string
	}{
		{"version 0", v0.url("main"), ""},
		{"dumb", dumb.URL + "/main.git", ""},
		{"server error", failing.URL + "/main.git", ""},
		{"proxy", v2.url("main"), "http_proxy"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.proxy != "" {
				// A proxy that is no proxy: git is told to go direct to loopback.
				t.Setenv(c.proxy, "http://127.0.0.1:1")
				t.Setenv("no_proxy", "127.0.0.1")
			}
			gitPath, log := loggingGit(t)
			dest := filepath.Join(t.TempDir(), "out")
			if err := (&Fetcher{Git: gitPath}).Checkout(testCtx(t), c.url, commit, dest); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dest, "feature.txt")); err != nil {
				t.Error(err)
			}
			fetched := false
			for _, sub := range subcommands(t, log) {
				fetched = fetched || sub == "fetch"
			}
			if !fetched {
				t.Errorf("git fetch did not run: %q", subcommands(t, log))
			}
		})
	}
}

// TestCheckoutInProcessWrongPack: a server whose answer to the in-process
// fetch is a sound pack without the commit: the pack is dropped and git
// fetches the commit, rather than the repository being taken for damaged
// and fetched in process again, in vain.
func TestCheckoutInProcessWrongPack(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	real := serve(t, w.root, true, 0)
	pack := buildPack(t, []rawObject{{typ: objBlob, data: []byte("not the commit\n")}})
	var body bytes.Buffer
	pktLine(&body, "packfile\n")
	for len(pack) > 0 {
		n := min(len(pack), 1000)
		pktLine(&body, "\x01"+string(pack[:n]))
		pack = pack[n:]
	}
	body.WriteString("0000")
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("User-Agent") != "git/cargohash" {
			real.Config.Handler.ServeHTTP(rw, r)
			return
		}
		if r.Method == http.MethodGet {
			rw.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
			var caps bytes.Buffer
			pktLine(&caps, "version 2\n")
			pktLine(&caps, "fetch=shallow\n")
			caps.WriteString("0000")
			rw.Write(caps.Bytes())
			return
		}
		rw.Header().Set("Content-Type", "application/x-git-upload-pack-result")
		rw.Write(body.Bytes())
	}))
	t.Cleanup(srv.Close)
	gitPath, log := loggingGit(t)
	var notes bytes.Buffer
	dest := filepath.Join(t.TempDir(), "out")
	if err := (&Fetcher{Git: gitPath, Log: &notes}).Checkout(testCtx(t), srv.URL+"/main.git", w.commits["F1"], dest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "feature.txt")); err != nil {
		t.Error(err)
	}
	if !slices.Contains(subcommands(t, log), "fetch") {
		t.Errorf("git fetch did not run: %q", subcommands(t, log))
	}
	if strings.Contains(notes.String(), "damaged") {
		t.Errorf("log:\n%s", notes.String())
	}
}

// TestCheckoutStalls: a server that goes silent, before its headers or
// after them, ends the checkout after the stall timeout with an error
// that says so; in process, git is not tried after it, and git, for a
// server left to it, stops too (http.lowSpeedTime).
func TestCheckoutStalls(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	real := serve(t, w.root, false, 0) // protocol 0: git's, for the last case
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var resultGets atomic.Int64
	t.Cleanup(func() {
		if n := resultGets.Load(); n > 0 {
			t.Errorf("capabilities asked for %d times after the fetch's answer stalled", n)
		}
	})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !strings.Contains(r.URL.Path, "/git/") {
			// Read, the request lets the server see the client go.
			io.Copy(io.Discard, r.Body)
		}
		switch {
		case strings.Contains(r.URL.Path, "/silent/"):
		case strings.Contains(r.URL.Path, "/result/") && r.Method == http.MethodGet:
			resultGets.Add(1)
			http.Error(rw, "asked for capabilities after a stall", http.StatusTeapot)
			return
		case strings.Contains(r.URL.Path, "/result/"):
			rw.Header().Set("Content-Type", "application/x-git-upload-pack-result")
			rw.WriteHeader(http.StatusOK)
			rw.(http.Flusher).Flush()
		case strings.Contains(r.URL.Path, "/headers/"):
			rw.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
			rw.WriteHeader(http.StatusOK)
			rw.(http.Flusher).Flush()
		// git's fetch stalls; cargohash's own goes to the server of
		// version 0, which refuses it, and so to git (a stall of
		// cargohash's fetch would be final: no git after it).
		case strings.Contains(r.URL.Path, "/git/") && r.Method == http.MethodPost && !strings.Contains(r.UserAgent(), "cargohash"):
			rw.Header().Set("Content-Type", "application/x-git-upload-pack-result")
			rw.WriteHeader(http.StatusOK)
			rw.(http.Flusher).Flush()
		default:
			r.URL.Path = strings.Replace(r.URL.Path, "/git/", "/", 1)
			real.Config.Handler.ServeHTTP(rw, r)
			return
		}
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	for _, c := range []struct{ name, path, want string }{
		{"in process, silent", "/silent/main.git", "transfer stalled"},
		{"in process, after headers", "/headers/main.git", "transfer stalled"},
		// The fetch's answer begins, then nothing: final, as a stall is.
		{"in process, within the answer", "/result/main.git", "transfer stalled"},
		{"git", "/git/main.git", "git fetch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			gitPath, log := loggingGit(t)
			f := &Fetcher{Git: gitPath, StallTimeout: time.Second}
			start := time.Now()
			err := f.Checkout(testCtx(t), srv.URL+c.path, w.commits["F1"], filepath.Join(t.TempDir(), "out"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one with %q", err, c.want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %s", d)
			}
			if ran := slices.Contains(subcommands(t, log), "fetch"); ran != (c.name == "git") {
				t.Errorf("git fetch ran: %v", ran)
			}
		})
	}
}
