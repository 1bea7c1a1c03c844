package fetchtest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
)

// AuthOptions make a Registry private, as Artifactory, Cloudsmith or a
// Kellnr instance are.
type AuthOptions struct {
	// Token, if set, must be the Authorization header of every request
	// (cargo's form: the token alone): without one the answer is 401,
	// with another 403.
	Token string
	// Required writes "auth-required": true into config.json.
	Required bool
	// CDN answers every crate download with a redirect (302) to a second
	// server on 127.0.0.1, which serves the file to anyone and records
	// the Authorization headers it is sent (CDNAuthorizations).
	CDN bool
}

// authState is what a private registry records.
type authState struct {
	cdn *httptest.Server

	mu       sync.Mutex
	cdnAuth  []string       // Authorization headers the CDN saw ("" for none)
	accepted map[string]int // path → requests with the right token
}

func (r *Registry) startAuth() {
	a := r.opts.Auth
	if a.Token == "" && !a.Required && !a.CDN {
		return
	}
	r.auth = &authState{accepted: map[string]int{}}
	if a.CDN {
		r.auth.cdn = httptest.NewServer(http.HandlerFunc(r.serveCDN))
	}
}

func (r *Registry) closeAuth() {
	if r.auth != nil && r.auth.cdn != nil {
		r.auth.cdn.CloseClientConnections()
		r.auth.cdn.Close()
	}
}

// CDNURL is the base URL of the download CDN ("" without AuthOptions.CDN).
func (r *Registry) CDNURL() string {
	if r.auth == nil || r.auth.cdn == nil {
		return ""
	}
	return r.auth.cdn.URL
}

// CDNAuthorizations lists the Authorization headers of the requests the
// CDN received, in order; "" for a request without one.
func (r *Registry) CDNAuthorizations() []string {
	if r.auth == nil {
		return nil
	}
	r.auth.mu.Lock()
	defer r.auth.mu.Unlock()
	return append([]string(nil), r.auth.cdnAuth...)
}

// Authorized is the number of requests of a URL path that carried the
// right token.
func (r *Registry) Authorized(path string) int {
	if r.auth == nil {
		return 0
	}
	r.auth.mu.Lock()
	defer r.auth.mu.Unlock()
	return r.auth.accepted[path]
}

// authorize checks a request's token; it answers 401 or 403 and reports
// false when it is missing or wrong.
func (r *Registry) authorize(w http.ResponseWriter, req *http.Request) bool {
	want := r.opts.Auth.Token
	if want == "" {
		return true
	}
	switch got := req.Header.Get("Authorization"); got {
	case want:
		r.auth.mu.Lock()
		r.auth.accepted[req.URL.Path]++
		r.auth.mu.Unlock()
		return true
	case "":
		w.Header().Set("WWW-Authenticate", `Cargo login_url="`+r.URL+`/me"`)
		http.Error(w, "fetchtest: authentication required", http.StatusUnauthorized)
	default:
		// Echo the token, as a careless server might: the client must
		// keep it out of its messages.
		http.Error(w, "fetchtest: token "+got+" is not valid", http.StatusForbidden)
	}
	return false
}

// redirect sends a crate download to the CDN; it reports whether it did.
func (r *Registry) redirect(w http.ResponseWriter, req *http.Request) bool {
	if r.auth == nil || r.auth.cdn == nil {
		return false
	}
	http.Redirect(w, req, r.auth.cdn.URL+req.URL.Path, http.StatusFound)
	return true
}

func (r *Registry) serveCDN(w http.ResponseWriter, req *http.Request) {
	r.auth.mu.Lock()
	r.auth.cdnAuth = append(r.auth.cdnAuth, req.Header.Get("Authorization"))
	r.auth.mu.Unlock()
	r.mu.Lock()
	body, ok := r.files[req.URL.Path]
	r.mu.Unlock()
	if !ok {
		http.NotFound(w, req)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}
