package fetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/cargohash/cargohash/internal/redact"
	"github.com/cargohash/cargohash/lockfile"
)

// Credentials, as cargo and curl send them:
//
//   - A registry named in cargo's configuration (Options.Registries) gets
//     its cargo:token token as "Authorization: TOKEN" (no scheme, cargo's
//     form) on its config.json, and on its downloads when config.json says
//     "auth-required": true.
//   - A --registry-dl mirror (Options.DL, http or https) gets Basic
//     credentials from the netrc file for its host ("machine", else
//     "default"), unless its URL carries credentials of its own.
//
// A credential goes only to the origin (scheme, host and port) of the URL it
// was given for. The header is added by authTransport, below the redirect
// handling of http.Client, so a redirect to another origin — a CDN, a
// storage bucket, another port of the same host — is followed without it.
// (http.Client itself would forward a header set on the request to a
// subdomain or another port of the same host.) Error bodies of requests that
// carried a credential are scrubbed of it before anything reads them.

// credential is an Authorization value and where it came from.
type credential struct {
	header  string   // the Authorization value: never printed
	secrets []string // what to scrub from error bodies (the header, the raw token or password)
	from    string   // an environment variable or a file
}

// authInfo is what the fetcher knows about the credentials of one
// registry or mirror: the one to send, if any, and how to explain a
// refusal.
type authInfo struct {
	who    string      // `registry "corp" (sparse+https://…)` or `mirror https://…`
	cred   *credential // nil: none to send
	detail string      // the explanation an AuthError ends with
	// private: a 403 is a refusal of credentials. For crates.io's CDN and
	// mirrors without credentials a 403 may mean a missing file (S3).
	private bool
}

// AuthError is a 401 or 403 from a registry or mirror that needs
// credentials cargohash did not have or that were refused. It says where
// cargohash looked; it never holds the credential. errors.Is(err,
// ErrFetch) holds.
type AuthError struct {
	Registry   string // `registry "NAME" (SOURCE)`, `registry SOURCE` or `mirror DL`
	Method     string
	URL        string // redacted
	StatusCode int
	Status     string
	Detail     string // "no token in CARGO_REGISTRIES_CORP_TOKEN, /root/.cargo/credentials.toml", …
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("%s: %s %s: %s (%s)", e.Registry, e.Method, e.URL, e.Status, e.Detail)
}

func (e *AuthError) Is(target error) bool { return target == ErrFetch }

// check turns a 401 or 403 answer into an AuthError.
func (a *authInfo) check(err error) error {
	var he *HTTPError
	if a == nil || !errors.As(err, &he) {
		return err
	}
	if he.StatusCode == http.StatusUnauthorized ||
		(he.StatusCode == http.StatusForbidden && (a.cred != nil || a.private)) {
		return &AuthError{Registry: a.who, Method: he.Method, URL: he.URL, StatusCode: he.StatusCode, Status: he.Status, Detail: a.detail}
	}
	return err
}

// credential is a's credential, nil if none.
func (a *authInfo) credential() *credential {
	if a == nil {
		return nil
	}
	return a.cred
}

// registryAuth finds the token of a registry source in cargo's
// configuration.
func (f *Fetcher) registryAuth(src lockfile.Source) *authInfo {
	a := &authInfo{who: "registry " + redact.URL(src.Raw), private: !src.IsCratesIO()}
	cfg := f.opts.Registries
	if cfg == nil {
		a.detail = "no token: cargo's configuration was not read"
		return a
	}
	reg, ok := cfg.Lookup(src.Raw)
	if !ok {
		files := "no config files"
		if fs := cfg.Files(); len(fs) > 0 {
			files = strings.Join(fs, ", ")
		}
		a.detail = fmt.Sprintf("no token: no [registries.NAME] index in %s or CARGO_REGISTRIES_NAME_INDEX is this registry's", files)
		return a
	}
	a.who = fmt.Sprintf("registry %q (%s)", reg.Name, redact.URL(src.Raw))
	tok, from, looked := cfg.Token(reg.Name)
	if tok.IsZero() {
		a.detail = "no token in " + strings.Join(looked, ", ")
		return a
	}
	a.cred = &credential{header: tok.Value(), secrets: []string{tok.Value()}, from: from}
	a.detail = "the token from " + from + " was refused"
	return a
}

// mirrorAuth finds netrc credentials for a --registry-dl template's host.
// It returns nil for file:// mirrors and for URLs with their own
// credentials.
func (f *Fetcher) mirrorAuth(dl string) *authInfo {
	u, err := url.Parse(dl)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
		return nil
	}
	a := &authInfo{who: "mirror " + redact.Parsed(u)}
	path, entries := f.netrcEntries()
	host := u.Hostname()
	e, ok := netrcLookup(entries, host)
	if !ok {
		if path == "" {
			a.detail = "no credentials: no netrc file (NETRC, ~/.netrc)"
		} else {
			a.detail = fmt.Sprintf("no credentials: no machine %s or default in %s", host, path)
		}
		return a
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(e.login+":"+e.password))
	a.cred = &credential{header: basic, secrets: []string{basic, e.password}, from: path}
	a.detail = fmt.Sprintf("the credentials for %s in %s were refused", host, path)
	return a
}

// authKey is the context key of a request's *authScope.
type authKey struct{}

// authScope is a credential and the one origin that may receive it.
type authScope struct {
	cred   *credential
	origin string
}

// withCredential returns ctx carrying cred for rawURL's origin; requests made
// with it (and the redirects they follow) carry the credential only to that
// origin.
func withCredential(ctx context.Context, cred *credential, rawURL string) context.Context {
	if cred == nil {
		return ctx
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return ctx
	}
	return context.WithValue(ctx, authKey{}, &authScope{cred: cred, origin: origin(u)})
}

// origin is scheme://host:port, with the default port made explicit.
func origin(u *url.URL) string {
	return strings.ToLower(u.Scheme) + "://" + hostPort(u)
}

// hostPort is u's host and port, the scheme's default port if u names
// none.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// authTransport adds the credential of a request's context when the
// request goes to the credential's origin.
type authTransport struct{ next http.RoundTripper }

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	s, _ := req.Context().Value(authKey{}).(*authScope)
	if s == nil || origin(req.URL) != s.origin {
		return a.next.RoundTrip(req)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", s.cred.header)
	resp, err := a.next.RoundTrip(req)
	if err == nil && resp.StatusCode >= 400 {
		resp.Body = scrubbed(resp.Body, s.cred.secrets)
	}
	return resp, err
}

// CloseIdleConnections passes the call on.
func (a *authTransport) CloseIdleConnections() {
	if c, ok := a.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// scrubbed reads at most maxErrorBody bytes of an error body and replaces
// the secrets in them, so that a server echoing a token cannot put it into
// an error message.
func scrubbed(body io.ReadCloser, secrets []string) io.ReadCloser {
	data, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	body.Close()
	for _, s := range secrets {
		if s != "" {
			data = bytes.ReplaceAll(data, []byte(s), []byte("REDACTED"))
		}
	}
	return io.NopCloser(bytes.NewReader(data))
}
