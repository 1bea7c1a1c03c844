package fetch

import (
	"os"
	"path/filepath"
	"strings"
)

// netrcEntry is one machine (or the default, machine "") of a netrc file.
type netrcEntry struct {
	machine, login, password string
}

// parseNetrc reads a netrc file as curl does: whitespace-separated tokens
// "machine NAME", "default", "login X", "password Y", "account Z" (ignored)
// and "macdef NAME" (its body, up to an empty line, skipped). Values may be
// double-quoted, with backslash escapes.
func parseNetrc(data string) []netrcEntry {
	var entries []netrcEntry
	var cur *netrcEntry
	toks := netrcTokens(data)
	for i := 0; i < len(toks); i++ {
		next := func() string {
			if i+1 < len(toks) {
				i++
				return toks[i].s
			}
			return ""
		}
		switch toks[i].s {
		case "machine":
			entries = append(entries, netrcEntry{machine: next()})
			cur = &entries[len(entries)-1]
		case "default":
			entries = append(entries, netrcEntry{})
			cur = &entries[len(entries)-1]
		case "login":
			if v := next(); cur != nil {
				cur.login = v
			}
		case "password":
			if v := next(); cur != nil {
				cur.password = v
			}
		case "account":
			next()
		case "macdef":
			next()
			// The macro's body runs to the first empty line.
			end := strings.Index(data[toks[i].end:], "\n\n")
			if end < 0 {
				return entries
			}
			stop := toks[i].end + end
			for i+1 < len(toks) && toks[i+1].start < stop {
				i++
			}
		}
	}
	return entries
}

type netrcToken struct {
	s          string
	start, end int
}

func netrcTokens(data string) []netrcToken {
	var toks []netrcToken
	i := 0
	for i < len(data) {
		c := data[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#' && (i == 0 || data[i-1] == '\n'):
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c == '"':
			start := i
			var b strings.Builder
			i++
			for i < len(data) && data[i] != '"' {
				if data[i] == '\\' && i+1 < len(data) {
					i++
				}
				b.WriteByte(data[i])
				i++
			}
			i++
			toks = append(toks, netrcToken{b.String(), start, min(i, len(data))})
		default:
			start := i
			for i < len(data) && !strings.ContainsRune(" \t\n\r", rune(data[i])) {
				i++
			}
			toks = append(toks, netrcToken{data[start:i], start, i})
		}
	}
	return toks
}

// netrcLookup finds the entry of host (case-insensitive), else the
// default.
func netrcLookup(entries []netrcEntry, host string) (netrcEntry, bool) {
	for _, e := range entries {
		if e.machine != "" && strings.EqualFold(e.machine, host) {
			return e, true
		}
	}
	for _, e := range entries {
		if e.machine == "" {
			return e, true
		}
	}
	return netrcEntry{}, false
}

// netrcEntries reads the netrc file once: Options.Netrc, else $NETRC, else
// ~/.netrc. It returns the path ("" if there is none) and its entries; an
// unreadable file is logged and has none.
func (f *Fetcher) netrcEntries() (string, []netrcEntry) {
	f.netrcOnce.Do(func() {
		path := f.opts.Netrc
		if path == "" {
			path = os.Getenv("NETRC")
		}
		if path == "" {
			if home := os.Getenv("HOME"); filepath.IsAbs(home) {
				path = filepath.Join(home, ".netrc")
			}
		}
		if path == "" {
			return
		}
		f.netrcPath = path
		data, err := os.ReadFile(path)
		if err != nil {
			if !os.IsNotExist(err) {
				f.log.Printf("netrc: %v", unwrapPathError(err))
			}
			return
		}
		f.netrc = parseNetrc(string(data))
	})
	return f.netrcPath, f.netrc
}
