package lockfile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// gitSource is nixpkgs' GIT_SOURCE_REGEX (fetchCargoVendor), anchored at both
// ends: URL, optional selector, then the commit after the last '#'.
// gitSource is compiled on first use: most locks have no git source, and
// compiling at init costs every run of the command.
var gitSource = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^git\+([^?]+)(\?(rev|tag|branch)=(.*))?#(.*)$`)
})

// ParseSource parses a source string as lock file version 4, the version
// current cargo writes: a git selector value is form-URL-decoded. Use
// ParseSourceVersion for a source taken from an older lock file.
//
// "" is a Local source. See ParseSourceVersion for the other kinds.
func ParseSource(raw string) (Source, error) {
	return ParseSourceVersion(raw, 4)
}

// ParseSourceVersion parses the source string raw of a Cargo.lock of the given
// version (1 to 4):
//
//	""                                  Local
//	registry+URL                        Registry, URL without "registry+"
//	sparse+URL                          Sparse, URL without "sparse+"
//	git+URL[?rev=X|?tag=X|?branch=X]#SHA Git
//
// A git source is split like nixpkgs' fetchCargoVendor does, with the regular
// expression git\+([^?]+)(\?(rev|tag|branch)=(.*))?#(.*). The commit after '#'
// must be a full lowercase hex SHA (40 digits, or 64 for a SHA-256
// repository).
//
// In lock files of version 4 and later cargo writes the selector value
// form-URL-encoded ("feature/x" as "feature%2Fx", "a+b" as "a%2Bb"), so the
// value is decoded as cargo's url crate decodes a query ('+' is a space, %XX a
// byte, a malformed escape stays as it is). Before version 4 cargo wrote the
// value raw and it is kept raw: cargo's own reader decodes it anyway, which
// turns a branch "a+b" of a v3 lock into "a b" (cargo 1.95 then re-locks it);
// nixpkgs keeps it raw too. Other source kinds (path+, directory+,
// local-registry+, anything else) are an error.
func ParseSourceVersion(raw string, version int) (Source, error) {
	s := Source{Raw: raw}
	if raw == "" {
		return s, nil
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s, fmt.Errorf("source %q: contains a control character", raw)
	}
	kind, url, _ := strings.Cut(raw, "+")
	switch kind {
	case "registry", "sparse":
		if url == "" {
			return s, fmt.Errorf("source %q: missing URL", raw)
		}
		s.Kind, s.URL = Registry, url
		if kind == "sparse" {
			s.Kind = Sparse
		}
		return s, nil
	case "git":
		m := gitSource().FindStringSubmatch(raw)
		if m == nil {
			return s, fmt.Errorf("source %q: git source is not git+URL[?rev=X|?tag=X|?branch=X]#COMMIT", raw)
		}
		s.Kind, s.URL, s.Commit = Git, m[1], m[5]
		if m[3] != "" {
			s.Ref = GitRef{Kind: m[3], Value: m[4]}
			if version >= 4 {
				s.Ref.Value = formDecode(m[4])
			}
		}
		if !IsCommitID(s.Commit) {
			return s, fmt.Errorf("source %q: commit %q is not a full lowercase hex SHA", raw, s.Commit)
		}
		return s, nil
	}
	return s, fmt.Errorf("source %q: %w", raw, errUnsupportedKind)
}

var errUnsupportedKind = errors.New("unsupported source kind (want registry+, sparse+ or git+)")

// formDecode decodes an application/x-www-form-urlencoded value the way
// Rust's url::form_urlencoded::parse does: '+' becomes a space, %XX with two
// hex digits the byte XX, any other '%' stays; invalid UTF-8 in the result
// becomes U+FFFD.
func formDecode(v string) string {
	if !strings.ContainsAny(v, "+%") {
		return v
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(v) && isHexDigit(v[i+1]) && isHexDigit(v[i+2]):
			b = append(b, unhex(v[i+1])<<4|unhex(v[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// IsCommitID reports whether c is a full lowercase git object id, SHA-1 (40
// hex digits) or SHA-256 (64), the only commit form a git source may lock.
// ParseSource applies it; code that makes a path or a git argument of a
// commit from elsewhere checks it with this, the one rule.
func IsCommitID(c string) bool { return isHex(c, 40) || isHex(c, 64) }

// isHex reports whether s is n lowercase hex digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
