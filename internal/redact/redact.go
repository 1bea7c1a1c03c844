// Package redact hides credentials in URLs before they reach an error
// message or a log line. It is the one policy for every URL cargohash
// prints: registry, download and git URLs alike.
package redact

import (
	"net/url"
	"regexp"
	"strings"
	"sync"
)

// Redacted replaces each secret part of a URL.
const Redacted = "REDACTED"

// URL returns u with its credentials hidden: the userinfo, user name
// included ("https://TOKEN@host/…" carries a token as the user), becomes
// REDACTED, and so does every query value. git's scp-like form
// "user@host:path" keeps its path and host with the user hidden. Input that
// is neither a URL nor a local path is replaced as a whole, since it could
// be anything.
func URL(u string) string {
	p, err := url.Parse(u)
	if err == nil && p.Opaque == "" {
		return Parsed(p)
	}
	if user, rest, ok := scpLike(u); ok {
		if user {
			return Redacted + "@" + rest
		}
		return u
	}
	if err == nil {
		return Parsed(p)
	}
	return "<unparsable URL>"
}

// Parsed is URL for a parsed URL.
func Parsed(p *url.URL) string {
	q := *p
	if q.User != nil {
		q.User = url.User(Redacted)
	}
	if q.RawQuery != "" {
		vals := q.Query()
		for k := range vals {
			vals[k] = []string{Redacted}
		}
		q.RawQuery = vals.Encode()
	}
	return q.String()
}

// scpLike recognises git's "[user@]host:path": no "://", a ':' before any
// '/'. It returns whether there is a user and the part after it.
func scpLike(u string) (user bool, rest string, ok bool) {
	colon, slash := strings.IndexByte(u, ':'), strings.IndexByte(u, '/')
	if strings.Contains(u, "://") || colon <= 0 || slash >= 0 && slash < colon {
		return false, "", false
	}
	head := u
	if slash >= 0 {
		head = u[:slash]
	}
	if at := strings.LastIndexByte(head, '@'); at >= 0 {
		return true, u[at+1:], true
	}
	return false, u, true
}

// urlInText finds what looks like a URL in free text (a library's log line,
// git's stderr).
var urlInText = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"']+`)
})

// Text returns s with every URL in it that could carry a credential (one
// with a user or a query) redacted as URL does.
func Text(s string) string {
	return urlInText().ReplaceAllStringFunc(s, func(u string) string {
		if !strings.ContainsAny(u, "@?") {
			return u
		}
		return URL(u)
	})
}
