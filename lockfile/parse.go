package lockfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// rawLock is the TOML shape of a Cargo.lock. Package fields are decoded as
// any so that a wrong type is reported in our words, not go-toml's.
type rawLock struct {
	Version  any              `toml:"version"`
	Package  []map[string]any `toml:"package"`
	Metadata map[string]any   `toml:"metadata"`
}

// Parse parses the Cargo.lock data; name is used in errors and kept in
// Lockfile.Name. Errors are *Error values naming the file, the line and the
// package where known.
//
// The lock version is the version key, which must be 3 or 4; without it the
// lock is version 1 if [metadata] holds "checksum NAME VERSION (SOURCE)"
// keys, else version 2. A package's checksum is its checksum key, or else its
// [metadata] entry (the v1 layout); "<none>" or no entry at all leaves
// Checksum "" — Parse accepts that, whoever needs to verify the crate must
// refuse it. A checksum that is there must be 64 lowercase hex digits.
// Sources are parsed by ParseSourceVersion with the lock's version. The same
// name, version and source twice is an error naming both lines.
// Dependencies are kept as written; nothing is resolved.
func Parse(name string, data []byte) (*Lockfile, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: name, Err: errors.New("empty file, not a Cargo.lock; make the lock with `cargo generate-lockfile`")}
	}
	var raw rawLock
	if err := toml.Unmarshal(data, &raw); err != nil {
		if line := scanLines(data).manifest; line > 0 {
			return nil, &Error{File: name, Line: line, Err: ErrManifest}
		}
		e := &Error{File: name, Err: err}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			e.Line, _ = de.Position()
			e.Err = fmt.Errorf("not valid TOML: %s", strings.TrimPrefix(de.Error(), "toml: "))
		}
		return nil, e
	}
	pos := scanLines(data)
	if pos.manifest > 0 {
		return nil, &Error{File: name, Line: pos.manifest, Err: ErrManifest}
	}
	l := &Lockfile{Name: name}
	fail := func(line int, pkg string, format string, args ...any) error {
		return &Error{File: name, Line: line, Package: pkg, Err: fmt.Errorf(format, args...)}
	}

	sums, err := metadataChecksums(raw.Metadata)
	if err != nil {
		return nil, &Error{File: name, Err: err}
	}
	switch v := raw.Version.(type) {
	case nil:
		l.Version = 2
		if len(sums) > 0 {
			l.Version = 1
		}
	case int64:
		if v != 3 && v != 4 {
			return nil, fail(pos.version, "", "unsupported lock file version %d (want 3 or 4, or none for 1 and 2)", v)
		}
		l.Version = int(v)
	default:
		return nil, fail(pos.version, "", "lock file version is %s, not an integer", tomlType(v))
	}

	// Package lines come from the [[package]] headers; an inline array
	// (package = [...]) has none, and then lines stay 0.
	lines := pos.packages
	if len(lines) != len(raw.Package) {
		lines = make([]int, len(raw.Package))
	}
	first := make(map[string]int, len(raw.Package)) // identity -> line
	l.Packages = make([]Package, 0, len(raw.Package))
	for i, rp := range raw.Package {
		p := Package{Line: lines[i]}
		var errs []string
		str := func(key string, dst *string) {
			switch v := rp[key].(type) {
			case nil:
			case string:
				*dst = v
			default:
				errs = append(errs, fmt.Sprintf("%s is %s, not a string", key, tomlType(v)))
			}
		}
		str("name", &p.Name)
		str("version", &p.Version)
		var source, checksum string
		str("source", &source)
		str("checksum", &checksum)
		id := p.Name
		if p.Name != "" && p.Version != "" {
			id = p.ID()
		}
		if len(errs) > 0 {
			return nil, fail(p.Line, id, "%s", strings.Join(errs, "; "))
		}
		switch {
		case p.Name == "" && p.Version == "":
			return nil, fail(p.Line, "", "[[package]] %d has no name and no version", i+1)
		case p.Name == "":
			return nil, fail(p.Line, "", "[[package]] %d (version %q) has no name", i+1, p.Version)
		case p.Version == "":
			return nil, fail(p.Line, id, "missing version")
		case !fileNameSafe(p.Name): // quoted, not in the id: it may hold a newline
			return nil, fail(p.Line, "", "[[package]] %d: name %q is not a package name", i+1, p.Name)
		case !fileNameSafe(p.Version):
			return nil, fail(p.Line, "", "[[package]] %d (%s): version %q is not a version", i+1, p.Name, p.Version)
		}
		deps, err := stringList(rp["dependencies"])
		if err != nil {
			return nil, fail(p.Line, id, "dependencies: %w", err)
		}
		p.Dependencies = deps

		if p.Source, err = ParseSourceVersion(source, l.Version); err != nil {
			return nil, &Error{File: name, Line: p.Line, Package: id, Err: err}
		}
		if checksum == "" && p.Source.Kind != Local {
			checksum = sums[p.Name+" "+p.Version+" ("+source+")"]
		}
		if checksum == "<none>" {
			checksum = ""
		}
		if checksum != "" && !isHex(checksum, 64) {
			return nil, fail(p.Line, id, "checksum %q is not 64 lowercase hex digits", checksum)
		}
		p.Checksum = checksum

		key := p.Name + "\x00" + p.Version + "\x00" + source
		if line, dup := first[key]; dup {
			return nil, fail(p.Line, id, "duplicate entry (first at %s)", lineRef(line))
		}
		first[key] = p.Line
		l.Packages = append(l.Packages, p)
	}
	if len(l.Packages) == 0 {
		// cargo always writes the root package, local as it is.
		return nil, &Error{File: name, Err: errors.New("no [[package]] entries, so not a Cargo.lock cargo wrote; make the lock with `cargo generate-lockfile`")}
	}
	return l, nil
}

// lineRef names a line for "first at": "line 12", or "an earlier entry" if
// unknown.
func lineRef(line int) string {
	if line == 0 {
		return "an earlier entry"
	}
	return fmt.Sprintf("line %d", line)
}

// metadataChecksums returns the v1 checksums of [metadata], keyed
// "NAME VERSION (SOURCE)", values as written ("<none>" included). Other
// [metadata] keys are ignored, as cargo does.
func metadataChecksums(meta map[string]any) (map[string]string, error) {
	const prefix = "checksum "
	var sums map[string]string
	for _, k := range slices.Sorted(maps.Keys(meta)) {
		v := meta[k]
		id, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("[metadata] %q is %s, not a string", k, tomlType(v))
		}
		// NAME VERSION (SOURCE): a name and a version hold no spaces.
		parts := strings.SplitN(id, " ", 3)
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" ||
			!strings.HasPrefix(parts[2], "(") || !strings.HasSuffix(parts[2], ")") {
			return nil, fmt.Errorf("[metadata] key %q is not \"checksum NAME VERSION (SOURCE)\"", k)
		}
		if sums == nil {
			sums = make(map[string]string)
		}
		sums[id] = s
	}
	return sums, nil
}

func stringList(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s, not an array", tomlType(v))
	}
	out := make([]string, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("entry %d is %s, not a string", i+1, tomlType(e))
		}
		out[i] = s
	}
	return out, nil
}

// tomlType names the TOML type of a value decoded into any, with an article.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

// positions are the lines (1-based) Parse reports: the top-level version key
// and each [[package]] header in order.
type positions struct {
	version  int
	packages []int
	manifest int // the line of the first table only a Cargo.toml has
}

// manifestTables are the top-level tables of a Cargo.toml that a Cargo.lock
// never has ([package] as a table, not [[package]]; [patch] is in both).
var manifestTables = map[string]bool{
	"package": true, "workspace": true, "dependencies": true, "dev-dependencies": true,
	"build-dependencies": true, "lib": true, "bin": true, "features": true, "target": true,
	"profile": true, "badges": true, "lints": true, "example": true, "test": true, "bench": true,
	"project": true, "replace": true,
}

// ErrManifest is the error of a Cargo.toml given where a Cargo.lock belongs.
var ErrManifest = errors.New("this is a Cargo manifest (Cargo.toml), not a Cargo.lock; " +
	"make the lock with `cargo generate-lockfile` in the project and give that")

// scanLines walks the TOML expressions of data for the lines of the version
// key, the [[package]] headers and the first manifest-only table. A parse
// error just ends the scan.
func scanLines(data []byte) positions {
	var pos positions
	var p unstable.Parser
	p.Reset(data)
	line, off := 1, 0
	lineAt := func(r unstable.Range) int {
		o := int(r.Offset)
		if o < off || o > len(data) {
			return 0
		}
		line += bytes.Count(data[off:o], []byte{'\n'})
		off = o
		return line
	}
	top := true
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			top = false
			k := e.Key()
			if !k.Next() {
				continue
			}
			n := k.Node()
			if name := string(n.Data); pos.manifest == 0 && manifestTables[name] && (e.Kind == unstable.Table || name != "package") {
				pos.manifest = lineAt(n.Raw)
			}
			if e.Kind != unstable.ArrayTable {
				continue
			}
			if string(n.Data) == "package" && !k.Next() {
				pos.packages = append(pos.packages, lineAt(n.Raw))
			}
		case unstable.KeyValue:
			if !top {
				continue
			}
			k := e.Key()
			if !k.Next() {
				continue
			}
			n := k.Node()
			if string(n.Data) == "version" && !k.Next() {
				pos.version = lineAt(n.Raw)
			}
		}
	}
	return pos
}

// File is a Cargo.lock read from disk: what every command that takes a lock
// carries, from the reading to the staging tree, the vendor tree and the
// checks.
type File struct {
	*Lockfile
	Path string // the file read
	Data []byte // its bytes, copied verbatim into staging and vendor trees
	// Mode is 0755 if the file is executable by anyone, else 0644: all
	// that Nix keeps of a file's permissions (and so all that cargoHash
	// covers).
	Mode fs.FileMode
}

// Load reads and parses a Cargo.lock. path is the lock file or a directory
// holding one; "" means ".". A missing file is an *Error naming the path
// that wraps fs.ErrNotExist.
func Load(path string) (*File, error) {
	if path == "" {
		path = "."
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, "Cargo.lock")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Err: onlyManifest(path, unwrapPath(err))}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{File: path, Err: unwrapPath(err)}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, &Error{File: path, Err: unwrapPath(err)}
	}
	l, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	mode := fs.FileMode(0o644)
	if fi.Mode()&0o100 != 0 { // executable as Nix sees it: by its owner
		mode = 0o755
	}
	return &File{Lockfile: l, Path: path, Data: data, Mode: mode}, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// onlyManifest adds to the error of a missing Cargo.lock that its directory
// holds a Cargo.toml, and how to make the lock; err stays wrapped.
func onlyManifest(lock string, err error) error {
	if !errors.Is(err, fs.ErrNotExist) || filepath.Base(lock) != "Cargo.lock" {
		return err
	}
	if _, serr := os.Stat(filepath.Join(filepath.Dir(lock), "Cargo.toml")); serr != nil {
		return err
	}
	return fmt.Errorf("%w: the directory holds a Cargo.toml but no lock; make it with `cargo generate-lockfile` there", err)
}

// fileNameSafe reports whether s, a package's name or version, can be part
// of a file name, as both are in every cache, staging tree and vendor tree:
// not "." or "..", no slash or backslash, no control character. Cargo
// never writes such a name ("../../evil" reached the fetch before).
func fileNameSafe(s string) bool {
	if s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r == '\\' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
