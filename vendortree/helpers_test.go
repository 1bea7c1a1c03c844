package vendortree

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/publish"
)

// crateFromDir makes a .crate from a source directory (a Debian
// librust-*-dev tree), Cargo.toml.orig added as `cargo package` does.
func crateFromDir(t testing.TB, dir, nv string) []byte {
	t.Helper()
	files, err := fetchtest.FilesFromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if f.Name == "Cargo.toml" {
			files = append(files, fetchtest.File{Name: "Cargo.toml.orig", Body: f.Body, Mode: f.Mode})
			break
		}
	}
	i := strings.LastIndex(nv, "-")
	return fetchtest.CrateFiles(nv[:i], nv[i+1:], files)
}

// indexLine is fetchtest.IndexLine for a test.
func indexLine(t testing.TB, name, version string, manifest []byte, crate []byte) []byte {
	t.Helper()
	line, err := fetchtest.IndexLine(name, version, manifest, crate)
	if err != nil {
		t.Fatal(err)
	}
	return line
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

// stampTree gives every directory and regular file of dir the time
// cargohash's own output has (publish.StampTime): a tree made by hand that
// stands for an earlier output.
func stampTree(t testing.TB, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(p, publish.StampTime, publish.StampTime)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// unpackCrateTo is unpackCrate written to the new directory dst.
func unpackCrateTo(ctx context.Context, tarball, crate, dst string, opt unpackOptions) (map[string]string, error) {
	m := newMemCrate(MaxMemCrate, "")
	defer m.release()
	files, err := unpackCrate(ctx, tarball, nil, crate, m, opt)
	if err != nil {
		return nil, err
	}
	return files, writeCrate(dst, m)
}

// fromStaging writes the vendor tree of the staging directory staging to
// out, as `cargohash vendor --staging` does.
func fromStaging(ctx context.Context, staging, out string, opts Options) error {
	in, err := StagingDir(staging)
	if err != nil {
		return err
	}
	opts.Keep = append(opts.Keep, staging)
	return Write(ctx, in, out, opts)
}

// openStaging is NewFS on the staging directory staging.
func openStaging(ctx context.Context, staging string, opts Options) (*FS, error) {
	in, err := StagingDir(staging)
	if err != nil {
		return nil, err
	}
	return NewFS(ctx, in, opts)
}
