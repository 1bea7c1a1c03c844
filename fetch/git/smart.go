package git

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cargohash/cargohash/internal/redact"
	"github.com/cargohash/cargohash/lockfile"
)

// A fetch over smart HTTP, in this process.
//
// `git fetch --depth=1 URL COMMIT` into an empty repository costs five
// processes (git, two for the remote helper, index-pack and the
// connectivity check's rev-list) and, on a small machine, most of a
// checkout's CPU: ten repositories fetched at once then wait for the
// processor, not the network. For http:// and https:// URLs fetchSmart
// does the same exchange itself, with protocol version 2
// (gitprotocol-v2(5), gitprotocol-http(5)): one POST of
//
//	command=fetch, ofs-delta, no-progress, deepen 1, want COMMIT, done
//
// whose answer is the commit's shallow boundary and a pack, which goes into
// the repository as git's index-pack would put it (storePack), with the
// boundary in the shallow file and the commit under refs/cargohash/. The
// commit is then read back from that pack, every object hashed against its
// id (verifyPack).
//
// git first asks for the server's capabilities (GET info/refs). Over HTTP
// each request of version 2 stands alone, so a server of version 2 answers
// the fetch without it, and fetchSmart sends the fetch first: a round trip
// fewer, a third of a cold checkout at 20 ms a request. Only when the
// answer is not a fetch's answer (an error status, or what a server of
// version 0 or the dumb protocol answers) does it ask for the
// capabilities, as git does, and fetch again as they allow.
//
// Anything else is git's: a server that does not speak version 2 or cannot
// deepen (it answers version 0, or the dumb protocol), an error status, a
// redirect, authentication, a refused want, a broken pack. fetchSmart then
// fails and the caller runs git fetch, which does what it always did and
// reports in git's words. So does a caller with a proxy or git tracing in
// its environment, where git's own HTTP stack is what the user set up.

// errNotSmart says that the server's answer is one fetchSmart leaves to git.
var errNotSmart = errors.New("not handled in process")

// errServerSays is the server's ERR line, under errNotSmart.
var errServerSays = errors.New("the server says")

// smartEnv are the environment variables that send a fetch to git: the
// proxies curl honours, and git's own HTTP and tracing knobs that pass the
// isolation (see passEnv).
var smartEnv = []string{
	"http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy",
	"GIT_SSL_CAPATH", "GIT_TRACE", "GIT_TRACE_PACKET", "GIT_CURL_VERBOSE",
}

// smartClient returns the client of in-process fetches, or nil when the
// environment leaves fetches to git (see smartEnv) or the CA bundle it
// names cannot be read.
func (f *Fetcher) smartClient() *http.Client {
	f.smartOnce.Do(func() {
		for _, k := range smartEnv {
			if os.Getenv(k) != "" {
				return
			}
		}
		tlsConfig := &tls.Config{}
		if ca := caBundle(os.Environ()); ca != "" {
			// git (curl) trusts that bundle alone.
			if tlsConfig.RootCAs = loadPool(ca); tlsConfig.RootCAs == nil {
				return
			}
		}
		f.smart = &http.Client{
			Transport: &http.Transport{
				DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				TLSClientConfig:       tlsConfig,
				ForceAttemptHTTP2:     true,
				TLSHandshakeTimeout:   30 * time.Second,
				MaxIdleConnsPerHost:   16,
				IdleConnTimeout:       30 * time.Second,
				ExpectContinueTimeout: time.Second,
			},
			// git follows a redirect of info/refs and then posts to where it
			// led; that is left to git.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return f.smart
}

// loadPool returns the certificates of the PEM file, or nil if it holds
// none or cannot be read.
func loadPool(file string) *x509.CertPool {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil
	}
	return pool
}

// smartURL reports whether url is one fetchSmart may try.
func smartURL(url string) bool {
	u, err := neturl.Parse(url)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

// fetchSmart fetches commit of url into the bare repository repo at depth
// 1, as described above, and returns the pack it stored. The caller holds
// the repository's lock alone.
func (s *session) fetchSmart(ctx context.Context, client *http.Client, repo, url, commit string) (pack *storedPack, err error) {
	base := url
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if len(commit) != 40 {
		return nil, fmt.Errorf("%w: object format sha256", errNotSmart)
	}
	pack, final, err := s.postFetch(ctx, client, repo, base, commit, false)
	if err == nil || final || ctx.Err() != nil {
		return pack, err
	}
	caps, err := smartCapabilities(ctx, client, base, s.f.stallTimeout())
	if err != nil {
		return nil, err
	}
	format, ok := caps["object-format"]
	if ok && format != "sha1" {
		return nil, fmt.Errorf("%w: object format %s", errNotSmart, format)
	}
	if !slices.Contains(strings.Fields(caps["fetch"]), "shallow") {
		return nil, fmt.Errorf("%w: server cannot deepen", errNotSmart)
	}
	pack, _, err = s.postFetch(ctx, client, repo, base, commit, ok)
	return pack, err
}

// postFetch sends the fetch request for commit to base and stores the pack
// of its answer; withFormat names the object format (sha1) in the request,
// as a server that advertises object-format wants. final says that asking
// the capabilities and fetching again would change nothing: the request
// got no HTTP answer (the network's error, or a stall, which the request
// for capabilities would meet as well), the server refused the fetch in
// words (ERR), or the answer went as far as the pack.
func (s *session) postFetch(ctx context.Context, client *http.Client, repo, base, commit string, withFormat bool) (pack *storedPack, final bool, err error) {
	var req bytes.Buffer
	pktLine(&req, "command=fetch\n")
	if withFormat {
		pktLine(&req, "object-format=sha1\n")
	}
	req.WriteString("0001")
	for _, arg := range []string{"ofs-delta", "no-progress", "deepen 1", "want " + commit, "done"} {
		pktLine(&req, arg+"\n")
	}
	req.WriteString("0000")

	resp, err := smartRequest(ctx, client, http.MethodPost, base+"git-upload-pack", &req, "application/x-git-upload-pack-result", s.f.stallTimeout())
	if err != nil {
		return nil, finalFetchError(err), err
	}
	defer resp.Body.Close()
	pr := &pktReader{r: bufio.NewReaderSize(resp.Body, 64<<10)}
	var shallow, unshallow []string
	for {
		section, err := pr.line()
		if err != nil {
			return nil, finalFetchError(err), err
		}
		switch section {
		case "shallow-info":
			for {
				l, err := pr.line()
				if err != nil {
					return nil, finalFetchError(err), err
				}
				if l == "" && pr.kind == pktDelim {
					break
				}
				if id, ok := strings.CutPrefix(l, "shallow "); ok && lockfile.IsCommitID(id) {
					shallow = append(shallow, id)
				} else if id, ok := strings.CutPrefix(l, "unshallow "); ok && lockfile.IsCommitID(id) {
					unshallow = append(unshallow, id)
				} else {
					return nil, false, fmt.Errorf("%w: shallow-info line %q", errNotSmart, l)
				}
			}
		case "packfile":
			pack, err := storePack(repo, &sideband{pr: pr})
			if err != nil {
				return nil, true, fmt.Errorf("pack: %w", err)
			}
			if err := updateShallow(repo, shallow, unshallow); err != nil {
				return nil, true, err
			}
			return pack, true, writeRef(repo, "refs/cargohash/"+commit, commit)
		default:
			return nil, false, fmt.Errorf("%w: section %q", errNotSmart, section)
		}
	}
}

// finalFetchError says whether err, of a fetch request before its pack,
// is final (see postFetch): no HTTP answer, a stall (also within the
// answer) or the server's ERR.
func finalFetchError(err error) bool {
	return !errors.Is(err, errNotSmart) || errors.Is(err, errStalled) || errors.Is(err, errServerSays)
}

// smartCapabilities asks base for git-upload-pack's protocol-version-2
// capabilities: key → value ("" for a bare key).
func smartCapabilities(ctx context.Context, client *http.Client, base string, stall time.Duration) (map[string]string, error) {
	resp, err := smartRequest(ctx, client, http.MethodGet, base+"info/refs?service=git-upload-pack", nil, "application/x-git-upload-pack-advertisement", stall)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	pr := &pktReader{r: bufio.NewReader(io.LimitReader(resp.Body, 1<<20))}
	first, err := pr.line()
	if err != nil {
		return nil, err
	}
	if first == "# service=git-upload-pack" { // as for version 0; optional in version 2
		if l, err := pr.line(); err != nil || l != "" || pr.kind != pktFlush {
			return nil, fmt.Errorf("%w: advertisement", errNotSmart)
		}
		if first, err = pr.line(); err != nil {
			return nil, err
		}
	}
	if first != "version 2" {
		return nil, fmt.Errorf("%w: protocol %q", errNotSmart, first)
	}
	caps := map[string]string{}
	for {
		l, err := pr.line()
		if err != nil {
			return nil, err
		}
		if pr.kind == pktFlush {
			return caps, nil
		}
		k, v, _ := strings.Cut(l, "=")
		caps[k] = v
	}
}

// errStalled is wrapped by the error of a request that received nothing
// for the stall timeout (a *stallError). git is not tried after it: the
// server is there and silent, and git would wait as long again.
var errStalled = errors.New("transfer stalled")

type stallError struct {
	url   string // redacted, without its query
	stall time.Duration
}

func (e *stallError) Error() string {
	return fmt.Sprintf("transfer stalled: nothing from %s for %s", e.url, e.stall)
}

func (e *stallError) Is(target error) bool { return target == errStalled }

// smartRequest sends a request of the smart protocol and returns the
// response, which must be a 200 of content type want. A request, its
// response's body included, that receives nothing for stall is ended
// with errStalled.
func smartRequest(ctx context.Context, client *http.Client, method, url string, body io.Reader, want string, stall time.Duration) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	shown, _, _ := strings.Cut(url, "?")
	stalled := &stallError{url: redact.URL(shown), stall: stall}
	timer := time.AfterFunc(stall, func() { cancel(stalled) })
	resp, err := sendSmart(ctx, client, method, url, body, want)
	if err != nil {
		timer.Stop()
		cancel(nil)
		if errors.Is(context.Cause(ctx), errStalled) {
			return nil, stalled
		}
		return nil, err
	}
	resp.Body = &watchedBody{r: resp.Body, ctx: ctx, timer: timer, stall: stall, stop: func() { cancel(nil) }}
	return resp, nil
}

// watchedBody is a response body whose stall timer each read that brings
// bytes restarts.
type watchedBody struct {
	r     io.ReadCloser
	ctx   context.Context
	timer *time.Timer
	stall time.Duration
	stop  func()
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.timer.Reset(b.stall)
	}
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), errStalled) {
		err = context.Cause(b.ctx)
	}
	return n, err
}

func (b *watchedBody) Close() error {
	b.timer.Stop()
	b.stop()
	return b.r.Close()
}

func sendSmart(ctx context.Context, client *http.Client, method, url string, body io.Reader, want string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotSmart, err)
	}
	req.Header.Set("Git-Protocol", "version=2")
	req.Header.Set("User-Agent", "git/cargohash")
	req.Header.Set("Pragma", "no-cache")
	if body != nil {
		req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
		req.Header.Set("Accept", want)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	if ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";"); resp.StatusCode != http.StatusOK || strings.TrimSpace(ct) != want {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s %s: %s, %q", errNotSmart, method, url, resp.Status, ct)
	}
	return resp, nil
}

// pkt-lines (gitprotocol-common(5)): four hex digits of length, then the
// data; lengths 0, 1 and 2 are the flush, delimiter and response-end
// packets.
const (
	pktData = iota
	pktFlush
	pktDelim
	pktEnd
)

func pktLine(b *bytes.Buffer, s string) {
	fmt.Fprintf(b, "%04x%s", len(s)+4, s)
}

// maxPkt is the longest packet: 65520 bytes with its length.
const maxPkt = 65520

type pktReader struct {
	r    *bufio.Reader
	kind int
	buf  []byte
}

// next reads one packet; its data (for pktData) is valid until the next call.
func (p *pktReader) next() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
		return nil, fmt.Errorf("%w: reading a packet: %w", errNotSmart, err)
	}
	n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
	if err != nil {
		return nil, fmt.Errorf("%w: packet length %q", errNotSmart, hdr[:])
	}
	switch {
	case n < 3:
		p.kind = [...]int{pktFlush, pktDelim, pktEnd}[n]
		return nil, nil
	case n == 3 || n > maxPkt:
		return nil, fmt.Errorf("%w: packet length %d", errNotSmart, n)
	}
	p.kind = pktData
	if cap(p.buf) < int(n-4) {
		p.buf = make([]byte, n-4, max(n-4, 1024))
	}
	data := p.buf[:n-4]
	if _, err := io.ReadFull(p.r, data); err != nil {
		return nil, fmt.Errorf("%w: reading a packet: %w", errNotSmart, err)
	}
	return data, nil
}

// line reads one packet as a text line, without its newline ("" for the
// special packets). A server's "ERR" line is an error.
func (p *pktReader) line() (string, error) {
	data, err := p.next()
	if err != nil {
		return "", err
	}
	l := strings.TrimSuffix(string(data), "\n")
	if msg, ok := strings.CutPrefix(l, "ERR "); ok && p.kind == pktData {
		return "", fmt.Errorf("%w: %w: %s", errNotSmart, errServerSays, msg)
	}
	return l, nil
}

// sideband reads the pack out of the packfile section: band 1 is data,
// band 2 progress (dropped), band 3 an error; a flush ends it.
type sideband struct {
	pr   *pktReader
	rest []byte
	done bool
}

func (s *sideband) Read(q []byte) (int, error) {
	for len(s.rest) == 0 {
		if s.done {
			return 0, io.EOF
		}
		data, err := s.pr.next()
		if err != nil {
			return 0, err
		}
		switch {
		case s.pr.kind != pktData:
			s.done = true
		case len(data) == 0:
		case data[0] == 1:
			s.rest = data[1:]
		case data[0] == 2:
		case data[0] == 3:
			return 0, fmt.Errorf("the server says: %s", strings.TrimSpace(string(data[1:])))
		default:
			return 0, fmt.Errorf("%w: sideband %d", errNotSmart, data[0])
		}
	}
	n := copy(q, s.rest)
	s.rest = s.rest[n:]
	return n, nil
}

// updateShallow adds and removes commits of the repository's shallow file,
// as git does after a fetch that deepens or shallows.
func updateShallow(repo string, add, remove []string) error {
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	path := filepath.Join(repo, "shallow")
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ids := append(strings.Fields(string(old)), add...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ids = slices.DeleteFunc(ids, func(id string) bool { return slices.Contains(remove, id) })
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id + "\n")
	}
	return replaceFile(repo, path, b.String())
}

// writeRef points the loose ref name of repo at id.
func writeRef(repo, name, id string) error {
	path := filepath.Join(repo, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return replaceFile(repo, path, id+"\n")
}

// replaceFile writes content to path, in the repository repo whose lock
// the caller holds alone, through a temporary file in repo renamed over
// it: one a killed process leaves there is no ref, shallow file or other
// name git reads.
func replaceFile(repo, path, content string) error {
	f, err := os.CreateTemp(repo, "cargohash-tmp-")
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
