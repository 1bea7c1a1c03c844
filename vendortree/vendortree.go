// Package vendortree owns the layouts of fetchCargoVendor's trees, in both
// directions: it writes vendor trees, reads any tree back, and is the one
// place that knows where each layout puts a crate. Its Kind names the
// three layouts:
//
//   - Staging (SPEC §3), fetchCargoVendor's first step: Cargo.lock,
//     tarballs/NAME-VERSION.tar.gz (StagingTarball), git/COMMIT/
//     (StagingCheckout). The root package writes it; StagingDir reads it
//     as the input of Write.
//   - Nixpkgs (SPEC §4), what fetchCargoVendor's second step builds:
//     Cargo.lock, .cargo/config.toml, source-registry/NAME-VERSION and
//     source-git-N/NAME-VERSION, each crate with a .cargo-checksum.json
//     that lists no files ({"files": {}, "package": "<lock checksum>"}, or
//     {"files": {}} for git crates), byte for byte as nixpkgs'
//     fetch-cargo-vendor-util.py writes them.
//   - Cargo (SPEC §5), what `cargo vendor` (cargo 1.95) writes: one
//     directory per crate (NAME for the newest version of a name,
//     NAME-VERSION for the others, or always NAME-VERSION with
//     VersionedDirs) with a .cargo-checksum.json listing the sha256 of
//     every file. CargoSourceConfig gives the [source] configuration cargo
//     vendor prints.
//
// Write builds a Nixpkgs or Cargo tree on disk, and NewFS presents the
// same tree to a tar writer without writing it. Open reads any
// of the three back, from a directory or a tarball, tells its Kind from its
// shape and lists its crates where the layout puts them (Tree.Crates);
// Checksum is a .cargo-checksum.json with its parser and both writers.
//
// Registry crates are unpacked from the staged .crate files with the safety
// rules of SPEC §4 (nothing lands or points outside the crate; hard links,
// devices and FIFOs refused; at most MaxCrateSize bytes). Git crates are
// found by package name in their checkout and copied with symlinks
// dereferenced; values they inherit from their workspace are written into
// their Cargo.toml.
//
// The output is built under a temporary name beside the destination and
// renamed into place when complete (package publish); on error nothing is
// left behind and an existing destination is untouched. An existing
// destination is replaced only if it is empty or has the shape of the
// same layout's tree (Dest, StagingDest). The package does not fetch anything
// and does not hash the tree as Nix does (the checker's sha256 of files
// aside).
package vendortree

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/cargohash/cargohash/internal/publish"
	"github.com/cargohash/cargohash/lockfile"
)

// Kind is the layout of a tree: a fetchCargoVendor staging dir or a vendor
// dir in one of the two layouts. Write writes the vendor layouts; Open
// tells any of the three from a tree's shape. As text (JSON, flags) a Kind
// is "nixpkgs", "cargo" or "staging".
type Kind int

const (
	// Nixpkgs is fetchCargoVendor's vendor layout (SPEC §4).
	Nixpkgs Kind = iota
	// Cargo is `cargo vendor`'s layout (SPEC §5).
	Cargo
	// Staging is fetchCargoVendor's staging dir (SPEC §3): Cargo.lock,
	// tarballs/NAME-VERSION.tar.gz, git/COMMIT/.
	Staging
)

var kindNames = [...]string{Nixpkgs: "nixpkgs", Cargo: "cargo", Staging: "staging"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if s == name {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown layout %q (want nixpkgs, cargo or staging)", s)
}

func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

func (k *Kind) UnmarshalText(b []byte) (err error) {
	*k, err = ParseKind(string(b))
	return err
}

// Where each layout puts things, relative to the tree's root.
const (
	registryDir  = "source-registry" // nixpkgs: registry crates, NAME-VERSION
	gitDirPrefix = "source-git-"     // nixpkgs: source-git-N/NAME-VERSION, N per git source

	// StagingTarballs is the staging dir's directory of .crate files,
	// NAME-VERSION.tar.gz (StagingTarball).
	StagingTarballs = "tarballs"
	// StagingGit is the staging dir's directory of git checkouts, one per
	// commit (StagingCheckout).
	StagingGit = "git"
)

// StagingTarball is where a staging dir holds the .crate file of the
// registry crate NAME@VERSION: tarballs/NAME-VERSION.tar.gz.
func StagingTarball(name, version string) string {
	return StagingTarballs + "/" + name + "-" + version + ".tar.gz"
}

// StagingCheckout is where a staging dir holds the checkout of a git
// commit: git/COMMIT.
func StagingCheckout(commit string) string { return StagingGit + "/" + commit }

// Options control Write and NewFS. The zero value writes the nixpkgs layout
// with the @vendor@ placeholder and discards warnings.
type Options struct {
	Layout Kind // Nixpkgs or Cargo
	// Absolute writes the vendor directory's real (absolute) path into the
	// nixpkgs layout's .cargo/config.toml instead of VendorPlaceholder.
	Absolute bool
	// VersionedDirs names every crate directory NAME-VERSION in the cargo
	// layout, like `cargo vendor --versioned-dirs`.
	VersionedDirs bool
	// Jobs bounds how many crates are written at once; 0 means GOMAXPROCS.
	// An FS holds this many crates at once (0: GOMAXPROCS, at most 4).
	// Each crate in hand holds at most MaxMemCrate bytes of file content
	// in memory.
	Jobs int
	// SpillDir is where the files of a crate that unpacks to more than
	// MaxMemCrate wait while it is written or archived; "" means
	// os.TempDir().
	SpillDir string
	// memLimit replaces MaxMemCrate when > 0 (tests).
	memLimit int64
	// Log receives warnings (dropped symlinks in git checkouts); nil
	// discards them.
	Log io.Writer
	// Keep lists inputs the output must not replace or hold (the lock);
	// see publish.Options.Keep.
	Keep []string
}

func (o Options) memLimitOrDefault() int64 {
	if o.memLimit > 0 {
		return o.memLimit
	}
	return MaxMemCrate
}

// crateJob is one crate to write: from the staging dir to dir (relative
// to the output root, '/'-separated).
type crateJob struct {
	pkg lockfile.Package
	dir string
}

// Write writes the vendor tree of in (a staging directory, StagingDir, or
// crates in a download cache) to out, in the layout opts asks for. out
// may not hold an input (opts.Keep). out is published as Dest
// says: a new path, an empty directory or an earlier vendor tree of the
// same layout; anything else is refused with a *publish.RefusedError
// before any work.
func Write(ctx context.Context, in Staged, out string, opts Options) error {
	jobs, err := plan(in.Lock.Lockfile, opts)
	if err != nil {
		return err
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	return publish.Dir(ctx, out, Dest(opts.Layout, opts.Keep...), func(tmp string) error {
		return write(ctx, in, tmp, absOut, jobs, opts)
	})
}

// Staged says where the inputs of a vendor tree are: a staging directory
// (StagingDir) or crates fetched elsewhere.
type Staged struct {
	// Lock is the lock, whose bytes and mode the nixpkgs layout copies.
	Lock *lockfile.File
	// Tarball names the .crate file of a registry crate of Lock (verified
	// again against its lock checksum when unpacked).
	Tarball func(p lockfile.Package) string
	// Open, if set, opens the .crate bytes of a registry crate of Lock
	// (which may be part of a larger file: Tarball then only names them
	// in messages); if nil, the file Tarball names is read.
	Open func(p lockfile.Package) (io.ReadCloser, error)
	// Checkout names the checkout of a git commit (a directory, or a
	// symlink to one).
	Checkout func(commit string) string
}

// StagingDir reads the lock of the staging directory staging (SPEC §3)
// and names its tarballs/NAME-VERSION.tar.gz and git/COMMIT.
func StagingDir(staging string) (Staged, error) {
	lock, err := lockfile.Load(filepath.Join(staging, "Cargo.lock"))
	if err != nil {
		return Staged{}, err
	}
	return Staged{
		Lock: lock,
		Tarball: func(p lockfile.Package) string {
			return filepath.Join(staging, filepath.FromSlash(StagingTarball(p.Name, p.Version)))
		},
		Checkout: func(commit string) string { return filepath.Join(staging, filepath.FromSlash(StagingCheckout(commit))) },
	}, nil
}

// plan lists the crates of lock with their directories in the output,
// refusing what the layout cannot hold.
func plan(lock *lockfile.Lockfile, opts Options) ([]crateJob, error) {
	if opts.Layout != Nixpkgs && opts.Layout != Cargo {
		return nil, fmt.Errorf("vendortree: cannot write the %s layout", opts.Layout)
	}
	var jobs []crateJob
	for _, p := range lock.Packages {
		switch p.Source.Kind {
		case lockfile.Local:
			continue
		case lockfile.Registry, lockfile.Sparse:
			if p.Checksum == "" {
				return nil, fmt.Errorf("%s: no checksum in %s", p.ID(), lock.Name)
			}
		case lockfile.Git:
		default:
			return nil, fmt.Errorf("%s: unsupported source %q", p.ID(), p.Source.Raw)
		}
		if nv := p.Name + "-" + p.Version; strings.ContainsAny(nv, `/\`) || strings.HasPrefix(nv, ".") {
			return nil, fmt.Errorf("%s: bad crate name or version", p.ID())
		}
		jobs = append(jobs, crateJob{pkg: p})
	}
	if opts.Layout == Cargo {
		return planCargo(jobs, opts)
	}
	gitIdx := newGitSourceIndex(lock)
	seen := map[string]lockfile.Package{}
	for i := range jobs {
		p := jobs[i].pkg
		nv := p.Name + "-" + p.Version
		if p.Source.Kind == lockfile.Git {
			jobs[i].dir = fmt.Sprintf("%s%d/%s", gitDirPrefix, gitIdx[gitKey(p.Source)], nv)
		} else {
			jobs[i].dir = registryDir + "/" + nv
		}
		if q, dup := seen[jobs[i].dir]; dup {
			if p.Source.Kind == lockfile.Git {
				return nil, fmt.Errorf("%s: two git crates with this name and version share %s:\n\t%s\n\t%s\n"+
					"give them different git selectors (e.g. rev = <sha> for each) in Cargo.toml and Cargo.lock",
					p.ID(), path.Dir(jobs[i].dir), q.Source.Raw, p.Source.Raw)
			}
			return nil, fmt.Errorf("%s: the same crate from two registries cannot be vendored together:\n\t%s\n\t%s",
				p.ID(), q.Source.Raw, p.Source.Raw)
		}
		seen[jobs[i].dir] = p
	}
	return jobs, nil
}

// planCargo names directories as cargo vendor does.
func planCargo(jobs []crateJob, opts Options) ([]crateJob, error) {
	newest := map[string]string{}
	seen := map[string]lockfile.Package{}
	for _, j := range jobs {
		p := j.pkg
		if q, dup := seen[p.Name+"\x00"+p.Version]; dup {
			return nil, fmt.Errorf("found duplicate version of package `%s v%s` vendored from two sources:\n\n\tsource 1: %s\n\tsource 2: %s",
				p.Name, p.Version, q.Source.Raw, p.Source.Raw)
		}
		seen[p.Name+"\x00"+p.Version] = p
		if v, ok := newest[p.Name]; !ok || compareVersions(p.Version, v) > 0 {
			newest[p.Name] = p.Version
		}
	}
	for i := range jobs {
		p := jobs[i].pkg
		if !opts.VersionedDirs && newest[p.Name] == p.Version {
			jobs[i].dir = p.Name
		} else {
			jobs[i].dir = p.Name + "-" + p.Version
		}
	}
	return jobs, nil
}

func write(ctx context.Context, in Staged, tmp, final string, jobs []crateJob, opts Options) error {
	if opts.Layout == Nixpkgs {
		if err := writeFile(filepath.Join(tmp, "Cargo.lock"), in.Lock.Data, in.Lock.Mode); err != nil {
			return err
		}
		vendorDir := VendorPlaceholder
		if opts.Absolute {
			vendorDir = final
		}
		if err := os.Mkdir(filepath.Join(tmp, ".cargo"), 0o755); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(tmp, ".cargo", "config.toml"), []byte(NixpkgsConfig(in.Lock.Lockfile, vendorDir)), 0o644); err != nil {
			return err
		}
	}
	// Parent directories first, so that crates can be written in parallel.
	parents := map[string]bool{}
	for _, j := range jobs {
		if d := path.Dir(j.dir); d != "." && !parents[d] {
			parents[d] = true
			if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
				return err
			}
		}
	}
	b, err := newBuilder(in, jobs, opts)
	if err != nil {
		return err
	}
	n := opts.Jobs
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(n)
	for _, j := range jobs {
		g.Go(func() error {
			m := newMemCrate(opts.memLimitOrDefault(), opts.SpillDir)
			m.reuse = true
			defer m.release()
			if err := b.build(gctx, j.pkg, m); err != nil {
				return err
			}
			return writeCrate(filepath.Join(tmp, filepath.FromSlash(j.dir)), m)
		})
	}
	return g.Wait()
}

// builder builds crates, each into an empty memCrate: the code shared by
// Write and FS.
type builder struct {
	in     Staged
	layout Kind
	trees  map[string]*gitTree // by commit
	warn   func(format string, args ...any)
}

func newBuilder(in Staged, jobs []crateJob, opts Options) (*builder, error) {
	b := &builder{in: in, layout: opts.Layout, trees: map[string]*gitTree{}}
	b.warn = func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, "warning: "+format+"\n", args...)
		}
	}
	for _, j := range jobs {
		if c := j.pkg.Source.Commit; j.pkg.Source.Kind == lockfile.Git && b.trees[c] == nil {
			if !lockfile.IsCommitID(c) {
				return nil, fmt.Errorf("%s: bad commit %q in source %q", j.pkg.ID(), c, j.pkg.Source.Raw)
			}
			root, err := filepath.EvalSymlinks(in.Checkout(c))
			if err != nil {
				return nil, fmt.Errorf("%s: git checkout: %w", j.pkg.ID(), err)
			}
			b.trees[c] = &gitTree{root: root}
		}
	}
	return b, nil
}

// build writes the crate p into w.
func (b *builder) build(ctx context.Context, p lockfile.Package, w *memCrate) error {
	if p.Source.Kind == lockfile.Git {
		if err := gitCrate(b.trees[p.Source.Commit], p, w, b.layout, b.warn); err != nil {
			return fmt.Errorf("%s (git %s): %w", p.ID(), p.Source.Commit, err)
		}
		return nil
	}
	return registryCrate(ctx, b.in, p, w, b.layout)
}

func registryCrate(ctx context.Context, in Staged, p lockfile.Package, w *memCrate, layout Kind) error {
	opt := unpackOptions{checksum: p.Checksum}
	if layout == Cargo {
		opt.skip, opt.hash = cargoSkips, true
	}
	var open func() (io.ReadCloser, error) // nil: the file Tarball names
	if in.Open != nil {
		open = func() (io.ReadCloser, error) { return in.Open(p) }
	}
	files, err := unpackCrate(ctx, in.Tarball(p), open, p.Name+"-"+p.Version, w, opt)
	if err != nil {
		return err
	}
	sum := Checksum{Files: files, Package: p.Checksum}
	return writeCrateFile(w, ChecksumFile, sum.Marshal(layout), 0o644)
}

func gitCrate(tree *gitTree, p lockfile.Package, w *memCrate, layout Kind, warn func(string, ...any)) error {
	src, err := tree.crateDir(p.Name)
	if err != nil {
		return err
	}
	c := &treeCopier{treeRoot: tree.root, warn: warn, out: w}
	if layout == Cargo {
		c.files = map[string]string{}
		c.skip = func(rel string, isDir bool, real string) bool {
			if cargoSkips(rel) {
				return true
			}
			// A subdirectory with its own Cargo.toml is another package:
			// cargo leaves it out of this one.
			if isDir {
				_, err := os.Stat(filepath.Join(real, "Cargo.toml"))
				return err == nil
			}
			return false
		}
	}
	if err := c.copyDir(src, "", nil); err != nil {
		return err
	}
	man, err := readCrateFile(w, "Cargo.toml")
	if err != nil {
		return err
	}
	newMan, changed, err := inheritWorkspace(man, src, tree.root)
	if err != nil {
		return err
	}
	if changed {
		if err := w.Remove("Cargo.toml"); err != nil {
			return err
		}
		if err := writeCrateFile(w, "Cargo.toml", newMan, 0o644); err != nil {
			return err
		}
		if c.files != nil {
			c.files["Cargo.toml"] = sha256Of(newMan)
		}
	}
	delete(c.files, ChecksumFile)
	if err := removeIfExists(w, ChecksumFile); err != nil {
		return err
	}
	sum := Checksum{Files: c.files}
	return writeCrateFile(w, ChecksumFile, sum.Marshal(layout), 0o644)
}

// cargoSkips reports whether cargo vendor leaves a crate path out: any
// path with a .git component, .gitattributes and .gitignore at any depth
// (case-sensitive) and the .cargo-ok marker. (Older cargo also skipped
// *.orig and *.rej; cargo 1.95 keeps them, Cargo.toml.orig included.)
func cargoSkips(rel string) bool {
	for _, c := range strings.Split(rel, "/") {
		if c == ".git" {
			return true
		}
	}
	base := path.Base(rel)
	switch base {
	case ".gitattributes", ".gitignore", ".cargo-ok":
		return true
	}
	return false
}

func writeFile(name string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
