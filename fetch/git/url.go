package git

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cargohash/cargohash/internal/redact"
)

// ErrRefusedURL is wrapped by the errors of URLs this package will not hand
// to git.
var ErrRefusedURL = errors.New("url refused")

// ValidateURL reports whether u may be given to git. It refuses the URLs
// that make git run something other than a fetch: empty ones, ones that
// begin with '-' (git would read them as options), and the remote-helper
// form "<transport>::<address>", ext:: above all, which runs an arbitrary
// command. Control characters are refused too. It does not check that the
// repository exists.
func ValidateURL(u string) error {
	shown := redact.URL(u) // a refused URL may still carry a token
	switch {
	case u == "":
		return fmt.Errorf("empty git url: %w", ErrRefusedURL)
	case strings.HasPrefix(u, "-"):
		return fmt.Errorf("git url %q begins with '-': %w", shown, ErrRefusedURL)
	case strings.ContainsFunc(u, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("git url %q holds a control character: %w", shown, ErrRefusedURL)
	}
	if t, _, ok := strings.Cut(u, "::"); ok && isTransportName(t) {
		if strings.EqualFold(t, "ext") {
			return fmt.Errorf("git url %q uses the ext:: transport, which runs commands: %w", shown, ErrRefusedURL)
		}
		return fmt.Errorf("git url %q uses the remote-helper form %s::: %w", shown, t, ErrRefusedURL)
	}
	return nil
}

// isTransportName reports whether s can be the <transport> of git's
// "<transport>::<address>" syntax.
func isTransportName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.' || r == '_') {
			return false
		}
	}
	return true
}

// transportName is the name under which git checks protocol.<name>.allow
// for u: the URL scheme ("ssh" for git+ssh and ssh+git, and for scp-like
// "host:path"), or "file" for file:// URLs and paths.
func transportName(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		switch s := strings.ToLower(u[:i]); s {
		case "git+ssh", "ssh+git":
			return "ssh"
		default:
			return s
		}
	}
	colon, slash := strings.IndexByte(u, ':'), strings.IndexByte(u, '/')
	if colon > 0 && (slash < 0 || colon < slash) {
		return "ssh"
	}
	return "file"
}

// submoduleTransportAllowed reports whether git, with its default
// protocol.allow policy, fetches a submodule over transport t: "always" for
// http, https, git and ssh; "user" (so not for submodules) for file and
// everything else; ext is refused earlier.
func submoduleTransportAllowed(t string, allowFile bool) bool {
	switch t {
	case "http", "https", "git", "ssh":
		return true
	case "file":
		return allowFile
	}
	return false
}
