package lockfile

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and that what it accepts keeps the
// promises of the types: names and versions set, lines in range, sources that
// parse again to the same value, checksums valid or empty, no duplicates.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.lock")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "version = 4\n", "version = 3\n[[package]]\nname = \"a\"\nversion = \"1\"\n",
		"[[package]]\nname=\"a\"\nversion=\"1\"\nsource=\"registry+x\"\n[metadata]\n\"checksum a 1 (registry+x)\" = \"<none>\"\n",
		"version = 4\npackage = [{name = \"a\", version = \"1\", source = \"git+u?branch=a%2F+b#" + sha + "\"}]\n",
		"[[package]]\n[[package]]\n", "[package]\nname = \"a\"\n", "version = 4\r\n[[package]]\r\nname = 'a'\r\nversion = '1'\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse("Cargo.lock", data)
		if err != nil {
			if l != nil {
				t.Fatalf("lock and error %v", err)
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		if l.Version < 1 || l.Version > 4 {
			t.Fatalf("version %d", l.Version)
		}
		seen := make(map[string]bool)
		lines := 1
		for i := range data {
			if data[i] == '\n' {
				lines++
			}
		}
		for _, p := range l.Packages {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("package %+v without name or version", p)
			}
			if p.Line < 0 || p.Line > lines {
				t.Fatalf("%s: line %d of %d", p.ID(), p.Line, lines)
			}
			if p.Checksum != "" && !isHex(p.Checksum, 64) {
				t.Fatalf("%s: checksum %q", p.ID(), p.Checksum)
			}
			s, err := ParseSourceVersion(p.Source.Raw, l.Version)
			if err != nil || s != p.Source {
				t.Fatalf("%s: source %+v parses again as %+v, %v", p.ID(), p.Source, s, err)
			}
			k := p.Name + " " + p.Version + " " + p.Source.Raw
			if seen[k] {
				t.Fatalf("duplicate %s", k)
			}
			seen[k] = true
		}
		if d := Diff(l, l); len(d) != 0 {
			t.Fatalf("Diff(l, l) = %v", d)
		}
	})
}
