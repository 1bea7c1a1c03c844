package fetchtest

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cargohash/cargohash/lockfile"
)

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// DL is the dl template written to config.json. A value starting with
	// "/" is relative to the server (and served by it); the default
	// "/api/v1/crates" (no markers) makes cargo and fetch append
	// "/{crate}/{version}/download", crates.io's API path. An absolute
	// value is written as is and not served.
	DL string
	// Latency delays every response.
	Latency time.Duration
	// Auth makes it a private registry (see AuthOptions).
	Auth AuthOptions
	// TLS serves HTTPS (with a certificate from CertPEM) instead of HTTP;
	// HTTP2 also offers HTTP/2 over it, as crates.io's CDN does.
	TLS, HTTP2 bool
	// HTTP2Streams is how many streams the server allows on a connection
	// (0: Go's default, 250).
	HTTP2Streams int
}

// Registry is a sparse cargo registry on 127.0.0.1: config.json and index
// files under /index/, crate files at the paths the dl template gives. Every
// request is counted by path, and faults can be queued per path.
type Registry struct {
	// URL is the server's base URL, "http://127.0.0.1:PORT" (https with
	// RegistryOptions.TLS).
	URL string

	srv  *httptest.Server
	opts RegistryOptions

	mu     sync.Mutex
	files  map[string][]byte   // download path → crate bytes
	index  map[string][]string // lowercase name → JSON lines
	faults map[string][]*Fault
	counts map[string]int
	agents []string
	sums   map[string]string // NAME@VERSION → checksum
	auth   *authState        // nil unless RegistryOptions.Auth is set

	conns    int // connections accepted
	open     int // connections open
	openPeak int // the most open at once
	inFlight int // requests being served
	peak     int // the most at once
}

// IndexPath is where the sparse index is served.
const IndexPath = "/index/"

// NewRegistry starts a registry. With tb non-nil it is closed by tb.Cleanup;
// otherwise call Close.
func NewRegistry(tb testing.TB, opts RegistryOptions) *Registry {
	if opts.DL == "" {
		opts.DL = "/api/v1/crates"
	}
	r := &Registry{
		opts:   opts,
		files:  map[string][]byte{},
		index:  map[string][]string{},
		faults: map[string][]*Fault{},
		counts: map[string]int{},
		sums:   map[string]string{},
	}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch st {
		case http.StateNew:
			r.conns++
			r.open++
			r.openPeak = max(r.openPeak, r.open)
		case http.StateClosed, http.StateHijacked:
			r.open--
		}
	}
	if opts.HTTP2Streams > 0 {
		r.srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: opts.HTTP2Streams}
	}
	if opts.TLS {
		r.srv.EnableHTTP2 = opts.HTTP2
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	r.URL = r.srv.URL
	r.startAuth()
	if tb != nil {
		tb.Cleanup(r.Close)
	}
	return r
}

// Close stops the server, cutting stalled responses short.
func (r *Registry) Close() {
	r.srv.CloseClientConnections()
	r.srv.Close()
	r.closeAuth()
}

// CertPEM is the PEM certificate a client must trust to reach a TLS
// registry (for SSL_CERT_FILE); nil without TLS.
func (r *Registry) CertPEM() []byte {
	if r.srv.Certificate() == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
}

// IndexURL is the sparse index URL, ending in "/".
func (r *Registry) IndexURL() string { return r.URL + IndexPath }

// Source is the registry's source as Cargo.lock writes it: "sparse+" IndexURL.
func (r *Registry) Source() lockfile.Source {
	return lockfile.Source{Raw: "sparse+" + r.IndexURL(), Kind: lockfile.Sparse, URL: r.IndexURL()}
}

// DL is the dl template of config.json, absolute.
func (r *Registry) DL() string {
	if strings.HasPrefix(r.opts.DL, "/") {
		return r.URL + r.opts.DL
	}
	return r.opts.DL
}

// Add publishes a crate file and returns its lock entry (source: this
// registry, checksum: the sha256 of data). data need not be a valid crate.
func (r *Registry) Add(name, version string, data []byte) lockfile.Package {
	pkg := lockfile.Package{Name: name, Version: version, Source: r.Source(), Checksum: Checksum(data)}
	line, _ := json.Marshal(indexLine{Name: name, Vers: version, Deps: []any{}, Cksum: pkg.Checksum, Features: map[string]any{}})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sums[pkg.ID()] = pkg.Checksum
	if strings.HasPrefix(r.opts.DL, "/") {
		if u, err := url.Parse(expand(r.DL(), name, version, pkg.Checksum)); err == nil {
			r.files[u.Path] = data
		}
	}
	lower := strings.ToLower(name)
	r.index[lower] = append(r.index[lower], string(line))
	return pkg
}

// AddCrate builds a crate with Crate(name, version, files) and adds it.
func (r *Registry) AddCrate(name, version string, files map[string]string) lockfile.Package {
	return r.Add(name, version, Crate(name, version, files))
}

// CrateURL is the download URL of a crate: the dl template expanded as
// cargo expands it ({sha256-checksum} is known only for added crates).
func (r *Registry) CrateURL(name, version string) string {
	r.mu.Lock()
	sum := r.sums[name+"@"+version]
	r.mu.Unlock()
	return expand(r.DL(), name, version, sum)
}

// CratePath is the URL path of a crate's download on this server.
func (r *Registry) CratePath(name, version string) string {
	u, err := url.Parse(r.CrateURL(name, version))
	if err != nil {
		return ""
	}
	return u.Path
}

// ConfigPath and IndexFilePath are the URL paths of index files.
func (r *Registry) ConfigPath() string { return IndexPath + "config.json" }

// IndexFilePath is the URL path of a crate name's index file.
func (r *Registry) IndexFilePath(name string) string {
	return IndexPath + IndexFile(name)
}

// Requests is the number of requests received for a URL path.
func (r *Registry) Requests(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[path]
}

// TotalRequests is the number of requests received for all paths.
func (r *Registry) TotalRequests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.counts {
		n += c
	}
	return n
}

// Connections is the number of connections accepted, the most that were
// open at once, and the most requests served at once (HTTP/2 streams
// count one each).
func (r *Registry) Connections() (conns, peakConns, peakRequests int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns, r.openPeak, r.peak
}

// UserAgents lists the distinct User-Agent headers received, sorted.
func (r *Registry) UserAgents() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, a := range r.agents {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.Strings(out)
	return out
}

// FaultKind is what a Fault does to a request.
type FaultKind int

const (
	// Status answers with Fault.Status (and Retry-After: Fault.RetryAfter
	// if set) and a short text body.
	Status FaultKind = iota + 1
	// Truncate announces the full Content-Length, sends Fault.Bytes bytes
	// (default: half) and closes the connection.
	Truncate
	// Reset closes the connection with a TCP reset before any response.
	Reset
	// ResetMidBody sends the headers and Fault.Bytes bytes (default: half),
	// then resets the connection.
	ResetMidBody
	// WrongBytes sends a complete 200 response whose body has one byte
	// changed.
	WrongBytes
	// Stall sends the headers and Fault.Bytes bytes (default: half), then
	// sends nothing for Fault.Delay or until the client goes away.
	Stall
	// Delay waits Fault.Delay, then answers normally.
	Delay
)

// Fault is a misbehaviour applied to the next requests of one path.
type Fault struct {
	Kind       FaultKind
	Times      int // requests it applies to: 0 means 1, negative means all
	Status     int
	RetryAfter string
	Bytes      int
	Delay      time.Duration
}

// Inject queues faults for a URL path (such as CratePath or ConfigPath):
// each applies to the next Times requests of that path, in order; later
// requests are served normally.
func (r *Registry) Inject(path string, faults ...Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range faults {
		f := f
		if f.Times == 0 {
			f.Times = 1
		}
		r.faults[path] = append(r.faults[path], &f)
	}
}

// nextFault takes the fault for a request of path, if any.
func (r *Registry) nextFault(path string) *Fault {
	q := r.faults[path]
	if len(q) == 0 {
		return nil
	}
	f := *q[0]
	if q[0].Times > 0 {
		q[0].Times--
		if q[0].Times == 0 {
			r.faults[path] = q[1:]
		}
	}
	return &f
}

type indexLine struct {
	Name     string         `json:"name"`
	Vers     string         `json:"vers"`
	Deps     []any          `json:"deps"`
	Cksum    string         `json:"cksum"`
	Features map[string]any `json:"features"`
	Yanked   bool           `json:"yanked"`
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	path := req.URL.Path
	r.mu.Lock()
	r.inFlight++
	r.peak = max(r.peak, r.inFlight)
	defer func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}()
	r.counts[path]++
	r.agents = append(r.agents, req.UserAgent())
	fault := r.nextFault(path)
	body, isFile := r.files[path]
	var lines []string
	if strings.HasPrefix(path, IndexPath) {
		lines = r.index[strings.ToLower(indexName(strings.TrimPrefix(path, IndexPath)))]
	}
	r.mu.Unlock()

	if !sleep(req, r.opts.Latency) {
		return
	}
	if !r.authorize(w, req) || (isFile && fault == nil && r.redirect(w, req)) {
		return
	}
	switch {
	case path == r.ConfigPath():
		c := map[string]any{"dl": r.DL(), "api": r.URL}
		if r.opts.Auth.Required {
			c["auth-required"] = true
		}
		cfg, _ := json.Marshal(c)
		body = cfg
	case isFile:
	case len(lines) > 0:
		body = []byte(strings.Join(lines, "\n") + "\n")
	default:
		if fault == nil {
			http.NotFound(w, req)
			return
		}
	}
	if fault != nil && !r.applyFault(w, req, fault, body) {
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// applyFault misbehaves; it reports whether the normal response should
// follow.
func (r *Registry) applyFault(w http.ResponseWriter, req *http.Request, f *Fault, body []byte) bool {
	part := f.Bytes
	if part <= 0 || part > len(body) {
		part = len(body) / 2
	}
	switch f.Kind {
	case Status:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		http.Error(w, fmt.Sprintf("fetchtest: injected %d", f.Status), f.Status)
		return false
	case Truncate, ResetMidBody, Stall:
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:part])
		w.(http.Flusher).Flush()
		switch f.Kind {
		case Truncate:
			closeConn(w, false)
		case ResetMidBody:
			closeConn(w, true)
		case Stall:
			sleep(req, f.Delay)
			closeConn(w, false)
		}
		return false
	case Reset:
		closeConn(w, true)
		return false
	case WrongBytes:
		wrong := append([]byte(nil), body...)
		if len(wrong) == 0 {
			wrong = []byte{0}
		} else {
			wrong[len(wrong)/2] ^= 0xff
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(wrong)))
		w.Write(wrong)
		return false
	case Delay:
		return sleep(req, f.Delay)
	}
	return true
}

// sleep waits d or until the client goes away; it reports whether d passed.
func sleep(req *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-req.Context().Done():
		return false
	}
}

// closeConn takes over the connection and closes it, with a TCP reset when
// reset is set.
func closeConn(w http.ResponseWriter, reset bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		tc.SetLinger(0)
	}
	conn.Close()
}

// IndexFile is the path of a crate name's index file below the index root
// ("se/rd/serde"), in a sparse index and a local registry alike.
func IndexFile(name string) string {
	lower := strings.ToLower(name)
	return prefix(lower) + "/" + lower
}

// indexName is the crate name of an index file path ("se/rd/serde").
func indexName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		name := p[i+1:]
		if prefix(strings.ToLower(name))+"/"+strings.ToLower(name) == strings.ToLower(p) {
			return name
		}
	}
	return ""
}

// prefix and expand are written from cargo's documentation, independently
// of package fetch, so that the tests of fetch cross-check it.
func prefix(name string) string {
	switch n := len(name); {
	case n == 0:
		return ""
	case n <= 2:
		return strconv.Itoa(n)
	case n == 3:
		return "3/" + name[:1]
	default:
		return name[:2] + "/" + name[2:4]
	}
}

func expand(dl, name, version, checksum string) string {
	markers := []string{"{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}"}
	found := false
	for _, m := range markers {
		found = found || strings.Contains(dl, m)
	}
	if !found {
		return dl + "/" + name + "/" + version + "/download"
	}
	p := prefix(name)
	dl = strings.ReplaceAll(dl, "{crate}", name)
	dl = strings.ReplaceAll(dl, "{version}", version)
	dl = strings.ReplaceAll(dl, "{lowerprefix}", strings.ToLower(p))
	dl = strings.ReplaceAll(dl, "{prefix}", p)
	return strings.ReplaceAll(dl, "{sha256-checksum}", checksum)
}
