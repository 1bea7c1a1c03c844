package vendortree

import (
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
)

// TestMemCrateActsAsOSRoot: memCrate, the model every crate is built in,
// walks paths as os.Root does (symlinks, "..", missing and non-directory
// components, loops), so the same operations on a memCrate and on a
// directory opened with os.OpenRoot succeed or fail alike, with the same
// error text. Each case is a sequence of operations; every one is compared.
// (memCrate's Open reads file content only: it refuses directories, which
// os.Root opens for listing, so directories are not opened here.)
func TestMemCrateActsAsOSRoot(t *testing.T) {
	cases := map[string][]string{
		"plain":              {"mkdir d/e", "create d/e/f", "stat d/e/f", "lstat d", "open d/e/f", "readlink d/e/f", "remove d", "remove d/e/f", "remove d/e"},
		"exists":             {"create f", "create f", "mkdir f", "mkdir f/g", "create f/g", "stat f/", "open f/"},
		"missing":            {"stat x", "lstat x/y", "open x", "remove x", "readlink x", "create x/y"},
		"symlink to file":    {"create f", "symlink f l", "stat l", "lstat l", "readlink l", "open l", "stat l/", "create l", "mkdir l", "remove l", "lstat l"},
		"symlink to dir":     {"mkdir d", "symlink d l", "create l/f", "stat l/f", "mkdir l", "mkdir l/g", "stat l/", "lstat l/", "remove l/f"},
		"dangling":           {"symlink nowhere l", "stat l", "lstat l", "create l", "mkdir l", "stat l/", "create l/x", "remove l"},
		"escaping":           {"symlink ../x up", "symlink /etc abs", "stat up", "lstat up", "create up/f", "stat abs", "open abs/passwd", "mkdir up/d", "stat ..", "create ../f", "stat /etc"},
		"escape through dir": {"mkdir d", "symlink .. d/s", "stat d/s", "stat d/s/..", "create d/s/../x", "symlink d/s/../x l", "stat l"},
		"dotdot":             {"mkdir a/b", "create a/f", "stat a/b/../f", "stat a/../..", "stat a/b/../../a/f", "create a/./b/../g", "stat a/g"},
		"through a file":     {"create f", "stat f/x", "create f/x", "mkdir f/x", "symlink f/x l", "stat l", "symlink f/ m", "stat m", "lstat f/"},
		"loop":               {"symlink b a", "symlink a b", "stat a", "lstat a", "create a", "open a/x", "symlink c c", "stat c/"},
		"chain":              {"mkdir d/e", "create d/e/f", "symlink d/e k1", "symlink k1/f k2", "symlink k2 k3", "stat k3", "symlink . s", "symlink s/s/s/s/s/s/s/s/s/d s9", "stat s9"},
		"dot names":          {"stat .", "lstat .", "mkdir .", "create .", "remove .", "stat ./"},
	}
	for name, ops := range cases {
		t.Run(name, func(t *testing.T) {
			root, err := os.OpenRoot(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			m := newMemCrate(MaxMemCrate, "")
			for _, op := range ops {
				if got, want := memOp(m, op), diskOp(root, op); got != want {
					t.Errorf("%s:\n\tmemCrate: %s\n\tos.Root:  %s", op, got, want)
				}
			}
		})
	}
}

func memOp(m *memCrate, op string) string {
	f := strings.Fields(op)
	switch f[0] {
	case "mkdir":
		return result(nil, m.MkdirAll(f[1]))
	case "create":
		w, err := m.Create(f[1], 0o644, 1)
		if err == nil {
			io.WriteString(w, "x")
			err = w.Close()
		}
		return result(nil, err)
	case "symlink":
		return result(nil, m.Symlink(f[1], f[2]))
	case "stat":
		return result(m.Stat(f[1]))
	case "lstat":
		return result(m.Lstat(f[1]))
	case "readlink":
		return result(m.Readlink(f[1]))
	case "remove":
		return result(nil, m.Remove(f[1]))
	case "open":
		r, err := m.Open(f[1])
		if err == nil {
			r.Close()
		}
		return result(nil, err)
	}
	panic(op)
}

func diskOp(root *os.Root, op string) string {
	f := strings.Fields(op)
	switch f[0] {
	case "mkdir":
		return result(nil, root.MkdirAll(f[1], 0o755))
	case "create":
		w, err := root.OpenFile(f[1], os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			io.WriteString(w, "x")
			err = w.Close()
		}
		return result(nil, err)
	case "symlink":
		return result(nil, root.Symlink(f[1], f[2]))
	case "stat":
		return result(root.Stat(f[1]))
	case "lstat":
		return result(root.Lstat(f[1]))
	case "readlink":
		return result(root.Readlink(f[1]))
	case "remove":
		return result(nil, root.Remove(f[1]))
	case "open":
		r, err := root.Open(f[1])
		if err == nil {
			r.Close()
		}
		return result(nil, err)
	}
	panic(op)
}

// result is what an operation gave: its error's text, or what it found.
func result(v any, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	switch v := v.(type) {
	case os.FileInfo:
		if v.IsDir() {
			return "dir"
		}
		return fmt.Sprintf("%v %d bytes", v.Mode().Type(), v.Size())
	case string:
		return "target " + v
	}
	return "ok"
}
