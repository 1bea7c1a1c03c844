// Package lockfile reads Cargo.lock files (versions 1 to 4) and lists the
// crates they name with their sources and checksums.
//
// It does not resolve dependencies, fetch anything or read Cargo.toml.
package lockfile

// SourceKind says where a package comes from.
type SourceKind int

const (
	// Local is a path or workspace package: it has no source and is skipped
	// by everything that fetches.
	Local SourceKind = iota
	// Registry is a git-index registry: source "registry+URL".
	Registry
	// Sparse is a sparse (HTTP) registry: source "sparse+URL".
	Sparse
	// Git is a git repository: source "git+URL[?rev=X|?tag=X|?branch=X]#SHA".
	Git
)

// CratesIORegistry and CratesIOSparse are the two source strings of crates.io.
const (
	CratesIORegistry = "registry+https://github.com/rust-lang/crates.io-index"
	CratesIOSparse   = "sparse+https://index.crates.io/"
)

// GitRef is the selector of a git source: which branch, tag or rev cargo was
// asked to follow. The locked commit is in Source.Commit whatever the selector.
type GitRef struct {
	Kind  string // "", "rev", "tag" or "branch"
	Value string // decoded as cargo decodes it (v4 form-URL-encoding)
}

// Source is a parsed package source.
type Source struct {
	Raw    string     // the source string exactly as in Cargo.lock
	Kind   SourceKind //
	URL    string     // index URL (registry, without "registry+"), sparse index URL (without "sparse+"), or repository URL (git, without "git+", selector and fragment)
	Ref    GitRef     // git only
	Commit string     // git only: the full commit SHA after '#'
}

// IsCratesIO reports whether s is crates.io, in either its git-index or sparse form.
func (s Source) IsCratesIO() bool {
	return s.Raw == CratesIORegistry || s.Raw == CratesIOSparse
}

// Package is one [[package]] entry.
type Package struct {
	Name         string
	Version      string
	Source       Source
	Checksum     string // lowercase hex sha256 of the .crate file; "" when the lock has none
	Dependencies []string
	Line         int // 1-based line of the [[package]] header in the file, 0 if unknown
}

// ID is "NAME@VERSION", the way errors name a package.
func (p Package) ID() string { return p.Name + "@" + p.Version }

// Lockfile is a parsed Cargo.lock.
type Lockfile struct {
	Name     string // file name given to Parse, used in errors
	Version  int    // 1, 2 (no version key: 1 if [metadata] holds checksums, else 2), 3 or 4
	Packages []Package
}

// Fetchable returns the packages that have a source (registry, sparse or
// git), in file order. Local packages are left out.
func (l *Lockfile) Fetchable() []Package {
	var out []Package
	for _, p := range l.Packages {
		if p.Source.Kind != Local {
			out = append(out, p)
		}
	}
	return out
}
