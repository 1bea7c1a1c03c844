package vendortree

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cargohash/cargohash/lockfile"
)

// VendorPlaceholder is what the nixpkgs layout writes in .cargo/config.toml
// where the vendor directory's path belongs; nixpkgs' cargoSetupHook
// substitutes it. Options.Absolute writes the real path instead.
const VendorPlaceholder = "@vendor@"

// tomlTable is one [source.KEY] table of a generated config, its entries in
// the order they are written.
type tomlTable struct {
	key     string
	entries [][2]string
}

// gitSourceIndex numbers git sources as nixpkgs does: distinct (url,
// selector kind, selector value) triples in order of first appearance in
// the lock, from 0. Several commits of one selector share a number.
type gitSourceIndex map[[3]string]int

func gitKey(s lockfile.Source) [3]string { return [3]string{s.URL, s.Ref.Kind, s.Ref.Value} }

func newGitSourceIndex(lock *lockfile.Lockfile) gitSourceIndex {
	idx := gitSourceIndex{}
	for _, p := range lock.Packages {
		if p.Source.Kind != lockfile.Git {
			continue
		}
		if _, ok := idx[gitKey(p.Source)]; !ok {
			idx[gitKey(p.Source)] = len(idx)
		}
	}
	return idx
}

// NixpkgsConfig returns the .cargo/config.toml of the nixpkgs layout for
// lock, byte for byte as nixpkgs' fetch-cargo-vendor-util.py (tomli_w)
// writes it, with vendorDir (VendorPlaceholder or a real path) as the
// directory prefix. One deliberate deviation (SPEC §4): every registry other
// than crates.io replaces-with the one "vendored-registry-source-0" instead
// of its own vendored-registry-source-K, because cargo rejects two
// directory sources with the same path.
func NixpkgsConfig(lock *lockfile.Lockfile, vendorDir string) string {
	tables := []tomlTable{
		{"vendored-registry-source-0", [][2]string{{"directory", vendorDir + "/source-registry"}}},
		{"crates-io", [][2]string{{"replace-with", "vendored-registry-source-0"}}},
	}
	seenRegistry := map[string]bool{}
	nextRegistry := 1
	gitIdx := newGitSourceIndex(lock)
	seenGit := map[int]bool{}
	for _, p := range lock.Packages {
		s := p.Source
		switch s.Kind {
		case lockfile.Registry, lockfile.Sparse:
			if s.IsCratesIO() || seenRegistry[s.Raw] {
				continue
			}
			seenRegistry[s.Raw] = true
			registry := s.URL
			if s.Kind == lockfile.Sparse {
				registry = s.Raw // nixpkgs keeps the "sparse+" prefix
			}
			tables = append(tables, tomlTable{
				fmt.Sprintf("original-registry-source-%d", nextRegistry),
				[][2]string{{"registry", registry}, {"replace-with", "vendored-registry-source-0"}},
			})
			nextRegistry++
		case lockfile.Git:
			n := gitIdx[gitKey(s)]
			if seenGit[n] {
				continue
			}
			seenGit[n] = true
			sel := [][2]string{{"git", s.URL}}
			if s.Ref.Kind != "" {
				sel = append(sel, [2]string{s.Ref.Kind, s.Ref.Value})
			}
			vendored := fmt.Sprintf("vendored-git-source-%d", n)
			tables = append(tables,
				tomlTable{vendored, [][2]string{{"directory", fmt.Sprintf("%s/source-git-%d", vendorDir, n)}}},
				tomlTable{fmt.Sprintf("original-git-source-%d", n), append(sel, [2]string{"replace-with", vendored})},
			)
		}
	}
	return writeTables(tables, tomliW)
}

// CargoSourceConfig returns the [source] configuration that `cargo vendor`
// (cargo 1.95) prints on stdout for lock vendored into dir (written as
// given, as cargo writes the path it was given): every source of the lock
// replaced with "vendored-sources", tables sorted by name.
func CargoSourceConfig(lock *lockfile.Lockfile, dir string) string {
	const merged = "vendored-sources"
	byName := map[string]tomlTable{}
	for _, p := range lock.Packages {
		s := p.Source
		var t tomlTable
		switch s.Kind {
		case lockfile.Registry, lockfile.Sparse:
			if s.IsCratesIO() {
				t = tomlTable{"crates-io", [][2]string{{"replace-with", merged}}}
				break
			}
			t = tomlTable{s.Raw, [][2]string{{"registry", strings.TrimPrefix(s.Raw, "registry+")}, {"replace-with", merged}}}
		case lockfile.Git:
			// The name is the source URL without the locked commit.
			name, _, _ := strings.Cut(s.Raw, "#")
			e := [][2]string{{"git", s.URL}}
			for _, k := range []string{"branch", "tag", "rev"} {
				if s.Ref.Kind == k {
					e = append(e, [2]string{k, s.Ref.Value})
				}
			}
			t = tomlTable{name, append(e, [2]string{"replace-with", merged})}
		default:
			continue
		}
		byName[t.key] = t
	}
	if len(byName) == 0 {
		return ""
	}
	byName[merged] = tomlTable{merged, [][2]string{{"directory", dir}}}
	names := make([]string, 0, len(byName))
	for k := range byName {
		names = append(names, k)
	}
	sort.Strings(names)
	tables := make([]tomlTable, len(names))
	for i, k := range names {
		tables[i] = byName[k]
	}
	return writeTables(tables, tomlRs)
}

// writeTables writes "[source.KEY]" tables separated by blank lines.
func writeTables(tables []tomlTable, st tomlStyle) string {
	var b strings.Builder
	for i, t := range tables {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("[source." + st.key(t.key) + "]\n")
		for _, e := range t.entries {
			b.WriteString(st.key(e[0]) + " = " + st.quote(e[1]) + "\n")
		}
	}
	return b.String()
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// tomlStyle is how one TOML writer quotes strings: a basic string with '"',
// '\\' and control characters escaped (\b \n \f \r short forms, tab raw
// or as \t, others as \uXXXX in the writer's hex case).
type tomlStyle struct {
	rawTab bool
	hex    string // format of other control characters
}

var (
	// tomliW is tomli_w's format_string (no multi-line), which nixpkgs'
	// fetch-cargo-vendor-util.py writes config.toml with.
	tomliW = tomlStyle{rawTab: true, hex: `\u%04x`}
	// tomlRs is the toml crate's, which `cargo vendor` prints with.
	tomlRs = tomlStyle{rawTab: false, hex: `\u%04X`}
)

func (st tomlStyle) key(k string) string {
	if isBareKey(k) {
		return k
	}
	return st.quote(k)
}

func (st tomlStyle) quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\t' && st.rawTab:
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, st.hex, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
