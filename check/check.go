// Package check compares what a project pins with what it vendors, for CI
// (SPEC §10): a src Cargo.lock against a staging dir, vendor dir or vendor
// tarball (the lock form), a vendor tree against its .cargo-checksum.json
// files and lock (the vendor form), and a recomputed cargoHash against the
// pinned one (the hash form: Hash compares; recomputing is the root
// package's job). It reads trees and tarballs; it fetches and writes
// nothing.
package check

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/lockfile"
	"github.com/cargohash/cargohash/vendortree"
)

// Result is the outcome of `cargohash check` (SPEC §10) and, as it
// marshals, the command's --json output. Every key is always present (an
// empty string, null or [] when it does not apply), so scripts can rely on
// the shape:
//
//	{
//	  "check":    "lock" | "hash" | "vendor",  the form that ran
//	  "ok":       true | false,                 false ⇔ exit status 1
//	  "problems": [{"code": C, "message": M}],  why not ok; [] when ok
//	  "src":      "path/Cargo.lock" | "",       the src lock (lock and hash forms, vendor form with a lock)
//	  "vendor":   null | {
//	    "path":    "…",                         as given to --vendor
//	    "kind":    "staging" | "nixpkgs" | "cargo",
//	    "tarball": true | false,
//	    "lock":    "…/Cargo.lock" | ""          its Cargo.lock, "" if it has none
//	  },
//	  "changes":  [{                            old (vendor, or the lock that produced the
//	    "kind":   "added" | "removed" | "changed",   pinned hash) → new (src); sorted by name
//	    "name":   "serde",
//	    "old":    null | {"name", "version", "source", "checksum"},
//	    "new":    null | {"name", "version", "source", "checksum"},
//	    "fields": ["version", "source", "checksum", "dependencies"],  what changed ("changed" only)
//	    "text":   "~ serde 1.0.196 -> 1.0.197"  the line the text output prints
//	  }],
//	  "hash":     null | {                      hash form only
//	    "specified": "sha256-…",                SRI
//	    "got":       "sha256-…",
//	    "fake":      true | false,              "" or lib.fakeHash was given
//	    "knownLock": "…" | ""                   the stored lock that produced "specified", if known
//	  },
//	  "crates":   N,                            crate directories (or staged crates) checked
//	  "issues":   [{                            problems inside the vendor tree, in tree order
//	    "kind":  "tampered" | "missing-file" | "extra-file" | "missing-crate" | "extra-crate"
//	             | "package-checksum" | "no-checksum-file" | "bad-checksum-file" | "bad-manifest",
//	    "crate": "NAME@VERSION" | "",
//	    "dir":   "source-registry/serde-1.0.197" | "",   relative to the vendor root
//	    "file":  "src/lib.rs" | "",                      relative to "dir"
//	    "want":  "…" | "",                               sha256 or checksum expected
//	    "got":   "…" | ""                                what is there
//	  }]
//	}
//
// Problem codes: "src-lock-missing", "vendor-lock-missing",
// "lock-packages-differ" (packages added, removed or changed),
// "lock-dependencies-differ", "lock-line-endings-differ",
// "lock-formatting-differs" (the same packages, other bytes: Nix compares
// the bytes, so these fail a Nix build too), "hash-mismatch" and
// "vendor-tree" (issues found).
type Result struct {
	Check    string        `json:"check"`
	OK       bool          `json:"ok"`
	Problems []Problem     `json:"problems"`
	Src      string        `json:"src"`
	Vendor   *VendorInfo   `json:"vendor"`
	Changes  []LockChange  `json:"changes"`
	Hash     *HashCheck    `json:"hash"`
	Crates   int           `json:"crates"`
	Issues   []VendorIssue `json:"issues"`
}

// Problem is one reason a check failed.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// VendorInfo describes the --vendor input of a check.
type VendorInfo struct {
	Path    string          `json:"path"`
	Kind    vendortree.Kind `json:"kind"` // "staging", "nixpkgs" or "cargo"
	Tarball bool            `json:"tarball"`
	Lock    string          `json:"lock"` // its Cargo.lock, "" if none
}

// LockChange is a lockfile.Change in the form check reports it.
type LockChange struct {
	Kind   string      `json:"kind"`
	Name   string      `json:"name"`
	Old    *PackageRef `json:"old"`
	New    *PackageRef `json:"new"`
	Fields []string    `json:"fields"`
	Text   string      `json:"text"`
}

// PackageRef is what check compares of a package.
type PackageRef struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	Source   string `json:"source"`   // raw, as in Cargo.lock; "" for none
	Checksum string `json:"checksum"` // "" for none
}

// HashCheck is the hash form's comparison.
type HashCheck struct {
	Specified nixhash.Hash `json:"specified"`
	Got       nixhash.Hash `json:"got"`
	Fake      bool         `json:"fake"`
	KnownLock string       `json:"knownLock"`
}

// VendorIssue is one problem found inside a vendor tree or staging dir.
type VendorIssue struct {
	Kind  string `json:"kind"`
	Crate string `json:"crate"`
	Dir   string `json:"dir"`
	File  string `json:"file"`
	Want  string `json:"want"`
	Got   string `json:"got"`
}

// String renders the issue as the text output prints it.
func (i VendorIssue) String() string {
	where := i.Dir
	if i.File != "" {
		where = pathJoin(i.Dir, i.File)
	}
	who := i.Crate
	if who == "" {
		who = i.Dir
	}
	switch i.Kind {
	case "tampered":
		return fmt.Sprintf("%s: %s: sha256 %s, .cargo-checksum.json says %s", who, where, i.Got, i.Want)
	case "missing-file":
		return fmt.Sprintf("%s: %s: listed in .cargo-checksum.json, missing%s", who, where, paren(i.Got))
	case "extra-file":
		return fmt.Sprintf("%s: %s: not listed in .cargo-checksum.json", who, where)
	case "missing-crate":
		return fmt.Sprintf("%s: in Cargo.lock, not in the vendor tree%s", who, paren(where))
	case "extra-crate":
		return fmt.Sprintf("%s: not in Cargo.lock", where)
	case "package-checksum":
		return fmt.Sprintf("%s: %s: package checksum %s, Cargo.lock says %s", who, where, orNone(i.Got), orNone(i.Want))
	case "no-checksum-file":
		return fmt.Sprintf("%s: no .cargo-checksum.json", where)
	case "bad-checksum-file", "bad-manifest":
		return fmt.Sprintf("%s: %s", where, i.Got)
	}
	return fmt.Sprintf("%s: %s %s", who, i.Kind, where)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func pathJoin(a, b string) string {
	if a == "" {
		return b
	}
	return a + "/" + b
}

func newResult(form string) *Result {
	return &Result{Check: form, OK: true, Problems: []Problem{}, Changes: []LockChange{}, Issues: []VendorIssue{}}
}

func (r *Result) fail(code, format string, args ...any) {
	r.OK = false
	r.Problems = append(r.Problems, Problem{Code: code, Message: fmt.Sprintf(format, args...)})
}

// OutOfDateHint is the advice printed with a lock that is not the vendored
// one, in the words of nixpkgs' cargoSetupHook (which scripts grep for)
// adapted to cargohash.
func OutOfDateHint(vendor, src string) string {
	return "ERROR: cargoHash or cargoSha256 is out of date\n\n" +
		"Cargo.lock is not the same in " + vendor + "\n\n" +
		"To fix the issue:\n" +
		"1. Set cargoHash to an empty string: `cargoHash = \"\";`\n" +
		"2. Build the derivation and wait for it to fail with a hash mismatch\n" +
		"3. Copy the \"got: sha256-...\" value back into the cargoHash field\n" +
		"   (or run `cargohash prefetch " + src + "` and pin the hash it prints)\n" +
		"then regenerate the vendor tree or tarball from that Cargo.lock.\n"
}

// ---- the lock form and the vendor form ----

// Vendor runs `check --src SRC --vendor VENDOR`, or `check --vendor
// VENDOR` when src is "".
//
// VENDOR is a staging directory (SPEC §3), a vendor directory in either
// layout (SPEC §4, §5) or a vendor tarball (.tar, .tar.gz, .tar.zst; its
// Cargo.lock is Cargo.lock or TOP/Cargo.lock, its tree the single top
// directory if there is one). SRC is a Cargo.lock or a directory holding one.
//
// With src, the src lock is compared with VENDOR's Cargo.lock: they must be
// the same bytes, as nixpkgs' cargoSetupHook requires and as cargoHash,
// which covers those bytes, implies. Differences are reported semantically
// (lockfile.Diff, old = VENDOR, new = src); locks with the same packages but
// other bytes are told apart as line endings only (CRLF vs LF), dependency
// lists, or formatting. A cargo-layout tree has no Cargo.lock (cargo vendor
// writes none): then its crates are compared instead, by the name and version
// in each crate's Cargo.toml and the package checksum in its
// .cargo-checksum.json; the tree records no sources, so a crate matches the
// src package of the same name and version whatever its source.
//
// A vendor directory or tarball (not a staging dir: its crates are packed)
// is then verified: every file a crate's .cargo-checksum.json lists must be
// there with that sha256, and no other file (nixpkgs-layout checksum files
// list no files, so only the package checksums are checked there); every
// package checksum must equal the lock's (the tree's own Cargo.lock, else
// src's); every crate of the lock must have a directory and every directory
// a crate. A staging dir alone (no src) is verified as well: each
// tarballs/NAME-VERSION.tar.gz against its lock checksum, each git/COMMIT
// present.
//
// A missing src or vendor lock is a failed check with its own problem code.
// The error return is for input that cannot be read (a path that does not
// exist, a corrupt or truncated tarball, an unparsable lock).
func Vendor(ctx context.Context, src, vendor string) (*Result, error) {
	form := "vendor"
	if src != "" {
		form = "lock"
	}
	r := newResult(form)
	var srcLock *lockfile.File
	if src != "" {
		lock, missing, err := loadLockOrMissing(src)
		if err != nil {
			return nil, err
		}
		if missing != "" {
			r.Src = missing
			r.fail("src-lock-missing", "ERROR: Missing Cargo.lock from src. Expected to find it at: %s\n"+
				"Hint: You can use the cargoPatches attribute to add a Cargo.lock manually to the build.", missing)
			return r, nil
		}
		srcLock, r.Src = lock, lock.Path
	}
	v, err := vendortree.Open(ctx, vendor)
	if err != nil {
		return nil, err
	}
	r.Vendor = &VendorInfo{Path: v.Path, Kind: v.Kind, Tarball: v.Tarball, Lock: v.Lock}
	var vendorLock *lockfile.Lockfile
	if v.LockData != nil {
		if vendorLock, err = lockfile.Parse(v.Lock, v.LockData); err != nil {
			return nil, err
		}
	}
	verifyWith := vendorLock
	if srcLock != nil {
		switch {
		case vendorLock != nil:
			compareLocks(r, srcLock, vendorLock, v.LockData, v.Path)
		case v.Kind == vendortree.Cargo:
			// No lock to compare: compare the crates themselves, which
			// covers package checksums; verify only files below.
			old := cargoCrates(r, v, srcLock.Lockfile)
			diffLocks(r, old, fetchableOnly(srcLock.Lockfile), false)
			if len(r.Changes) > 0 {
				r.fail("lock-packages-differ", "%s", OutOfDateHint(v.Path, srcLock.Path))
			}
		default:
			want := v.Path + "/Cargo.lock"
			if v.Tarball {
				want = v.Path + ": Cargo.lock or TOP/Cargo.lock"
			}
			r.fail("vendor-lock-missing", "ERROR: Missing lockfile from cargo vendor. Expected to find it at: %s\n"+
				"Hint: regenerate the vendor tree from src's Cargo.lock (cargohash staging, vendor or tarball).", want)
		}
	}
	switch {
	case v.Kind == vendortree.Staging:
		// With --src too: the lock comparison does not look at the staged
		// .crate files, and a tampered or missing one must not pass.
		if verifyWith == nil && srcLock != nil {
			verifyWith = srcLock.Lockfile // its own is missing (a failure already)
		}
		if verifyWith == nil {
			return nil, fmt.Errorf("%s: a staging directory without Cargo.lock", vendor)
		}
		verifyStaging(r, v, verifyWith)
	default:
		if verifyWith == nil && srcLock != nil && v.Kind != vendortree.Cargo {
			verifyWith = srcLock.Lockfile
		}
		verifyTree(r, v, verifyWith)
	}
	if srcLock == nil && vendorLock == nil && r.Crates == 0 && len(r.Issues) == 0 {
		// Nothing was checked: a mistyped path must not pass.
		return nil, fmt.Errorf("%s: not a vendor tree: no Cargo.lock and no vendored crate (a directory with .cargo-checksum.json) in it", vendor)
	}
	if len(r.Issues) > 0 {
		r.fail("vendor-tree", "%d problem(s) in the vendor tree %s", len(r.Issues), v.Path)
	}
	return r, nil
}

// loadLockOrMissing loads path (a lock or a directory holding one). An
// existing directory without Cargo.lock, or a path named Cargo.lock in an
// existing directory, is "missing" (a failed check); anything else that
// cannot be read is an error.
func loadLockOrMissing(path string) (lock *lockfile.File, missing string, err error) {
	file := path
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		file = filepath.Join(path, "Cargo.lock")
	}
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		if fi, err := os.Stat(filepath.Dir(file)); err == nil && fi.IsDir() && filepath.Base(file) == "Cargo.lock" {
			return nil, file, nil
		}
	}
	lock, err = lockfile.Load(file)
	return lock, "", err
}

func fetchableOnly(l *lockfile.Lockfile) *lockfile.Lockfile {
	c := *l
	c.Packages = l.Fetchable()
	return &c
}

// compareLocks compares the src lock with the vendor's lock bytes.
func compareLocks(r *Result, src *lockfile.File, vendor *lockfile.Lockfile, vendorData []byte, vendorPath string) {
	if bytes.Equal(src.Data, vendorData) {
		return
	}
	hint := OutOfDateHint(vendorPath, src.Path)
	if diffLocks(r, vendor, src.Lockfile, true) {
		r.fail("lock-packages-differ", "%s", hint)
		return
	}
	if bytes.Equal(crlfToLF(src.Data), crlfToLF(vendorData)) {
		r.fail("lock-line-endings-differ", "the locks differ only in line endings (src: %s, vendor: %s): the same packages, "+
			"but cargoHash covers Cargo.lock's bytes and nixpkgs' cargoSetupHook compares them byte for byte, so the Nix build "+
			"fails too (check git's core.autocrlf and .gitattributes for Cargo.lock)\n%s",
			lineEndings(src.Data), lineEndings(vendorData), hint)
		return
	}
	if len(r.Changes) > 0 {
		r.fail("lock-dependencies-differ", "the same packages, but dependency lists differ: the Nix build fails too\n%s", hint)
		return
	}
	r.fail("lock-formatting-differs", "the same packages and dependencies, but the bytes differ (comments, order, whitespace "+
		"or lock version): cargoHash covers the bytes, so the Nix build fails too\n%s", hint)
}

// diffLocks appends lockfile.Diff(old, new) to r.Changes and reports whether
// there was any; with deps it then adds a "changed" entry, fields
// ["dependencies"], for every unchanged package whose dependency list
// differs.
func diffLocks(r *Result, old, new *lockfile.Lockfile, deps bool) bool {
	changes := lockfile.Diff(old, new)
	for _, c := range changes {
		lc := LockChange{Kind: c.Kind, Old: ref(c.Old), New: ref(c.New), Fields: []string{}, Text: c.String()}
		if c.Old != nil {
			lc.Name = c.Old.Name
		} else {
			lc.Name = c.New.Name
		}
		if c.Kind == "changed" {
			if c.Old.Version != c.New.Version {
				lc.Fields = append(lc.Fields, "version")
			}
			if c.Old.Source.Raw != c.New.Source.Raw {
				lc.Fields = append(lc.Fields, "source")
			}
			if c.Old.Checksum != c.New.Checksum {
				lc.Fields = append(lc.Fields, "checksum")
			}
		}
		r.Changes = append(r.Changes, lc)
	}
	if len(changes) > 0 || !deps {
		return len(changes) > 0
	}
	oldDeps := map[string][]string{}
	for _, p := range old.Packages {
		oldDeps[p.Name+"\x00"+p.Version+"\x00"+p.Source.Raw] = p.Dependencies
	}
	for i := range new.Packages {
		p := &new.Packages[i]
		if d, ok := oldDeps[p.Name+"\x00"+p.Version+"\x00"+p.Source.Raw]; ok && !slices.Equal(d, p.Dependencies) {
			r.Changes = append(r.Changes, LockChange{Kind: "changed", Name: p.Name, Old: ref(p), New: ref(p),
				Fields: []string{"dependencies"}, Text: fmt.Sprintf("~ %s %s (dependencies)", p.Name, p.Version)})
		}
	}
	return false
}

func ref(p *lockfile.Package) *PackageRef {
	if p == nil {
		return nil
	}
	return &PackageRef{Name: p.Name, Version: p.Version, Source: p.Source.Raw, Checksum: p.Checksum}
}

func crlfToLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// lineEndings names the line endings of b: "CRLF", "LF", "mixed" or "none".
func lineEndings(b []byte) string {
	crlf := bytes.Count(b, []byte("\r\n"))
	lf := bytes.Count(b, []byte("\n")) - crlf
	switch {
	case crlf > 0 && lf > 0:
		return "mixed"
	case crlf > 0:
		return "CRLF"
	case lf > 0:
		return "LF"
	}
	return "none"
}

// ---- vendor trees ----

// cargoCrates builds the lock a cargo-layout tree stands for: one package
// per crate directory, named by its Cargo.toml, with the package checksum of
// its .cargo-checksum.json and the source of the src package of that name
// and version, else of that name (the tree records no sources).
func cargoCrates(r *Result, v *vendortree.Tree, src *lockfile.Lockfile) *lockfile.Lockfile {
	sources := map[string]lockfile.Source{}
	for _, p := range src.Packages {
		sources[p.Name+"\x00"+p.Version] = p.Source
		if _, ok := sources[p.Name]; !ok {
			sources[p.Name] = p.Source
		}
	}
	out := &lockfile.Lockfile{Name: v.Path}
	for _, c := range v.Crates() {
		name, version, err := v.Manifest(c.Dir)
		if err != nil {
			r.Issues = append(r.Issues, VendorIssue{Kind: "bad-manifest", Dir: c.Dir, Got: err.Error()})
			continue
		}
		sum, _ := v.Checksum(c.Dir)
		src, ok := sources[name+"\x00"+version]
		if !ok {
			src = sources[name] // a version bump of a src package
		}
		p := lockfile.Package{Name: name, Version: version, Source: src}
		if sum != nil {
			p.Checksum = sum.Package
		}
		out.Packages = append(out.Packages, p)
	}
	return out
}

// verifyTree checks every crate directory against its .cargo-checksum.json
// and, when lock is not nil, against lock.
func verifyTree(r *Result, v *vendortree.Tree, lock *lockfile.Lockfile) {
	// A crate is known by "NAME-VERSION" (nixpkgs layout: its directory
	// name, registry and git crates apart) or "NAME\x00VERSION" (cargo
	// layout: from its Cargo.toml).
	keyOf := func(p *lockfile.Package) string {
		if v.Kind == vendortree.Cargo {
			return p.Name + "\x00" + p.Version
		}
		if p.Source.Kind == lockfile.Git {
			return "git\x00" + p.Name + "-" + p.Version
		}
		return p.Name + "-" + p.Version
	}
	byKey := map[string]*lockfile.Package{}
	used := map[*lockfile.Package]bool{}
	if lock != nil {
		for i := range lock.Packages {
			if p := &lock.Packages[i]; p.Source.Kind != lockfile.Local {
				byKey[keyOf(p)] = p
			}
		}
	}
	issue := func(i VendorIssue) { r.Issues = append(r.Issues, i) }
	for _, c := range v.Crates() {
		r.Crates++
		var key, crate string
		if v.Kind == vendortree.Cargo {
			name, version, err := v.Manifest(c.Dir)
			if err != nil {
				issue(VendorIssue{Kind: "bad-manifest", Dir: c.Dir, Got: err.Error()})
			} else {
				key, crate = name+"\x00"+version, name+"@"+version
			}
		} else {
			key = c.Dir[strings.LastIndex(c.Dir, "/")+1:]
			if c.Git {
				key = "git\x00" + key
			}
		}
		pkg := byKey[key]
		if pkg != nil {
			crate = pkg.ID()
			if used[pkg] {
				pkg = nil // a second directory for one crate
			}
		}
		if lock != nil && key != "" && pkg == nil {
			issue(VendorIssue{Kind: "extra-crate", Crate: crate, Dir: c.Dir})
		}
		if pkg != nil {
			used[pkg] = true
		}
		sums, err := v.Checksum(c.Dir)
		if errors.Is(err, fs.ErrNotExist) {
			issue(VendorIssue{Kind: "no-checksum-file", Crate: crate, Dir: c.Dir})
			continue
		} else if err != nil {
			issue(VendorIssue{Kind: "bad-checksum-file", Crate: crate, Dir: c.Dir, Got: err.Error()})
			continue
		}
		if pkg != nil {
			if got := sums.Package; got != pkg.Checksum {
				issue(VendorIssue{Kind: "package-checksum", Crate: crate, Dir: c.Dir, File: vendortree.ChecksumFile, Want: pkg.Checksum, Got: got})
			}
		}
		if len(sums.Files) == 0 {
			continue // nixpkgs layout: the file vouches for no file
		}
		files := make([]string, 0, len(sums.Files))
		for f := range sums.Files {
			files = append(files, f)
		}
		slices.Sort(files)
		for _, f := range files {
			got, err := v.FileSum(c.Dir + "/" + f)
			switch {
			case err != nil:
				issue(VendorIssue{Kind: "missing-file", Crate: crate, Dir: c.Dir, File: f, Want: sums.Files[f], Got: missingReason(err)})
			case got != sums.Files[f]:
				issue(VendorIssue{Kind: "tampered", Crate: crate, Dir: c.Dir, File: f, Want: sums.Files[f], Got: got})
			}
		}
		for _, f := range v.FilesUnder(c.Dir) {
			if _, listed := sums.Files[f]; !listed && f != vendortree.ChecksumFile {
				issue(VendorIssue{Kind: "extra-file", Crate: crate, Dir: c.Dir, File: f})
			}
		}
	}
	if lock != nil {
		for i := range lock.Packages {
			p := &lock.Packages[i]
			if p.Source.Kind != lockfile.Local && byKey[keyOf(p)] == p && !used[p] {
				issue(VendorIssue{Kind: "missing-crate", Crate: p.ID()})
			}
		}
	}
}

func missingReason(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return err.Error()
}

// verifyStaging checks a staging dir: tarballs/NAME-VERSION.tar.gz against
// the lock checksums, git/COMMIT for every git commit, nothing else.
func verifyStaging(r *Result, v *vendortree.Tree, lock *lockfile.Lockfile) {
	want := map[string]bool{"Cargo.lock": true}
	for _, p := range lock.Packages {
		switch p.Source.Kind {
		case lockfile.Registry, lockfile.Sparse:
			r.Crates++
			name := vendortree.StagingTarball(p.Name, p.Version)
			want[name], want[vendortree.StagingTarballs] = true, true
			got, err := v.FileSum(name)
			switch {
			case err != nil:
				r.Issues = append(r.Issues, VendorIssue{Kind: "missing-crate", Crate: p.ID(), File: name, Got: missingReason(err)})
			case got != p.Checksum:
				r.Issues = append(r.Issues, VendorIssue{Kind: "package-checksum", Crate: p.ID(), File: name, Want: p.Checksum, Got: got})
			}
		case lockfile.Git:
			r.Crates++
			name := vendortree.StagingCheckout(p.Source.Commit)
			if want[name] {
				continue
			}
			want[name], want[vendortree.StagingGit] = true, true
			if !v.IsDir(name) {
				r.Issues = append(r.Issues, VendorIssue{Kind: "missing-crate", Crate: p.ID(), File: name})
			}
		}
	}
	for _, top := range v.Children("") {
		names := []string{top}
		if top == vendortree.StagingTarballs || top == vendortree.StagingGit {
			names = nil
			for _, c := range v.Children(top) {
				names = append(names, top+"/"+c)
			}
		}
		for _, n := range names {
			if !want[n] {
				r.Issues = append(r.Issues, VendorIssue{Kind: "extra-crate", File: n})
			}
		}
	}
}

// ---- the hash form ----

// Hash is the hash form, `check LOCK --hash HASH`: got is the cargoHash
// recomputed from lock, want the one specified (fake: "" or lib.fakeHash was
// given). On a mismatch, known, if not nil, is the lock that produced want
// (see cargohash.Session.KnownLock): the changes from it to lock are listed
// and the message says what kind of difference it is.
func Hash(lock *lockfile.File, want, got nixhash.Hash, fake bool, known *lockfile.File) *Result {
	r := newResult("hash")
	r.Src = lock.Path
	r.Hash = &HashCheck{Specified: want, Got: got, Fake: fake}
	if want.Equal(got) {
		return r
	}
	msg := "the cargoHash of " + lock.Path + " is not the one specified"
	switch {
	case fake:
		msg = "a fake hash was specified; pin the one got"
	case known == nil:
		msg += "; the lock that produced it is unknown (cargohash remembers the locks it hashed, in its cache)"
	default:
		r.Hash.KnownLock = known.Path
		switch {
		case bytes.Equal(known.Data, lock.Data):
			msg += "; the lock that produced it is byte-identical, so the fetched sources differ " +
				"(a crate re-published or a git tree changed), or Cargo.lock's executable bit"
		case diffLocks(r, known.Lockfile, lock.Lockfile, true):
			msg += "; packages changed since the lock that produced it (" + known.Path + ")"
		case bytes.Equal(crlfToLF(known.Data), crlfToLF(lock.Data)):
			msg += fmt.Sprintf("; the lock that produced it differs only in line endings (%s then, %s now): "+
				"cargoHash covers Cargo.lock's bytes", lineEndings(known.Data), lineEndings(lock.Data))
		case len(r.Changes) > 0:
			msg += "; dependency lists changed since the lock that produced it"
		default:
			msg += "; the lock that produced it has the same packages in other bytes (formatting)"
		}
	}
	r.fail("hash-mismatch", "%s", msg)
	return r
}
