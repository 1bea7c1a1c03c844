package vendortree

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/pelletier/go-toml/v2"
)

// tarEntry is one entry of a crate tarball made by a test.
type tarEntry struct {
	name     string // full name, prefix included
	typ      byte
	mode     int64
	body     string
	linkname string
}

func file(name, body string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}

// makeTarGz writes the entries as a gzip'd tar (GNU format when needed).
func makeTarGz(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		size := int64(len(e.body))
		if e.typ != tar.TypeReg {
			size = 0
		}
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Size: size, Linkname: e.linkname, Format: tar.FormatGNU}
		if e.mode == 0 {
			hdr.Mode = 0o644
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// crateFromDir makes a .crate from a source directory (a Debian
// librust-*-dev tree): every file under NAME-VERSION/ in path order, the
// Debian .cargo-checksum.json left out, Cargo.toml.orig added as
// `cargo package` does.
func crateFromDir(t testing.TB, dir, nv string) []byte {
	t.Helper()
	var entries []tarEntry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() || rel == ".cargo-checksum.json" {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		e := file(nv+"/"+filepath.ToSlash(rel), string(data))
		e.mode = int64(fi.Mode().Perm())
		entries = append(entries, e)
		if rel == "Cargo.toml" {
			entries = append(entries, file(nv+"/Cargo.toml.orig", string(data)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return makeTarGz(t, entries)
}

// indexLine is the registry index entry of a crate, its dependencies read
// from its Cargo.toml.
func indexLine(t testing.TB, name, version string, manifest []byte, crate []byte) []byte {
	t.Helper()
	var man map[string]any
	if err := toml.Unmarshal(manifest, &man); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	type dep struct {
		Name            string   `json:"name"`
		Req             string   `json:"req"`
		Features        []string `json:"features"`
		Optional        bool     `json:"optional"`
		DefaultFeatures bool     `json:"default_features"`
		Target          *string  `json:"target"`
		Kind            string   `json:"kind"`
		Package         *string  `json:"package,omitempty"`
	}
	deps := []dep{}
	addDeps := func(tables map[string]any, target *string) {
		for tk, kind := range map[string]string{"dependencies": "normal", "build-dependencies": "build", "dev-dependencies": "dev"} {
			tab, _ := tables[tk].(map[string]any)
			for dn, v := range tab {
				d := dep{Name: dn, Req: "*", Features: []string{}, DefaultFeatures: true, Target: target, Kind: kind}
				switch v := v.(type) {
				case string:
					d.Req = v
				case map[string]any:
					if s, ok := v["version"].(string); ok {
						d.Req = s
					}
					if b, ok := v["optional"].(bool); ok {
						d.Optional = b
					}
					if b, ok := v["default-features"].(bool); ok {
						d.DefaultFeatures = b
					}
					if fs, ok := v["features"].([]any); ok {
						for _, f := range fs {
							d.Features = append(d.Features, f.(string))
						}
					}
					if p, ok := v["package"].(string); ok {
						d.Package = &p
					}
				}
				deps = append(deps, d)
			}
		}
	}
	addDeps(man, nil)
	if targets, ok := man["target"].(map[string]any); ok {
		for k, v := range targets {
			k := k
			addDeps(v.(map[string]any), &k)
		}
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].Name < deps[j].Name })
	features := map[string][]string{}
	if f, ok := man["features"].(map[string]any); ok {
		for k, v := range f {
			features[k] = []string{}
			for _, x := range v.([]any) {
				features[k] = append(features[k], x.(string))
			}
		}
	}
	sum := sha256.Sum256(crate)
	line, err := json.Marshal(map[string]any{
		"name": name, "vers": version, "deps": deps, "cksum": hex.EncodeToString(sum[:]),
		"features": features, "yanked": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	return append(line, '\n')
}

func indexPath(name string) string {
	n := strings.ToLower(name)
	switch len(n) {
	case 1:
		return filepath.Join("1", n)
	case 2:
		return filepath.Join("2", n)
	case 3:
		return filepath.Join("3", n[:1], n)
	}
	return filepath.Join(n[:2], n[2:4], n)
}

func mustWrite(t testing.TB, name string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, perm); err != nil {
		t.Fatal(err)
	}
}

func run(t testing.TB, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// treeEntry describes one path of a tree for comparisons.
type treeEntry struct {
	Mode fs.FileMode
	Data string // file content or symlink target
}

func readTree(t testing.TB, root string) map[string]treeEntry {
	t.Helper()
	m := map[string]treeEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := treeEntry{Mode: fi.Mode()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Data, err = os.Readlink(p)
		case fi.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			e.Data = string(b)
		}
		m[filepath.ToSlash(rel)] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func getenv(k string) string { return os.Getenv(k) }
