package cargohash_test

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/cargohash/cargohash"

// TestLayers keeps imports pointing one way: format packages use only the
// standard library (and each other), the lock reader knows nothing of
// fetching, the downloaders and the vendorer know nothing of the
// orchestration, the checker reads trees but fetches nothing, and nothing
// but main imports the CLI.
func TestLayers(t *testing.T) {
	rules := []struct {
		dir     string
		allowed func(imp string) bool
	}{
		{"hash/nar", stdOr()},
		{"hash/nixbase32", stdOr()},
		{"hash/nixhash", stdOr(module + "/hash/")},
		{"hash/gnutar", stdOr()},
		{"internal/publish", stdOr(module + "/internal/osfile")},
		{"internal/osfile", stdOr()},
		{"lockfile", stdOr("github.com/pelletier/go-toml/v2")},
		{"internal/redact", stdOr()},
		{"fetch/git", stdOr(module+"/lockfile", module+"/internal/redact", module+"/internal/publish", "golang.org/x/sync")},
		{"fetch", stdOr(module+"/lockfile", module+"/internal/redact", module+"/internal/publish", module+"/internal/osfile", module+"/fetch/cargoconfig", "github.com/hashicorp/", "github.com/multiformats/")},
		{"fetch/cargoconfig", stdOr("github.com/pelletier/go-toml/v2")},
		{"fetch/forge", stdOr()},
		{"internal/fetchtest", stdOr(module+"/lockfile", "github.com/klauspost/compress", "github.com/pelletier/go-toml/v2")},
		{"vendortree", stdOr(module+"/lockfile", module+"/internal/publish", "github.com/klauspost/compress", "github.com/ulikunitz/xz", "github.com/pelletier/go-toml/v2", "golang.org/x/sync", "golang.org/x/sys/unix")},
		{"check", stdOr(module+"/lockfile", module+"/hash/", module+"/vendortree", "github.com/klauspost/compress", "github.com/pelletier/go-toml/v2")},
		{".", notOf(module + "/cmd/")},
	}
	for _, r := range rules {
		entries, err := os.ReadDir(r.dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(r.dir, name), nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, spec := range f.Imports {
				imp, _ := strconv.Unquote(spec.Path.Value)
				if !r.allowed(imp) {
					t.Errorf("%s imports %s, which its layer must not", filepath.Join(r.dir, name), imp)
				}
			}
		}
	}
}

// stdOr allows the standard library and imports with the given prefixes.
func stdOr(prefixes ...string) func(string) bool {
	return func(imp string) bool {
		if !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
			return true
		}
		for _, p := range prefixes {
			if strings.HasPrefix(imp, p) {
				return true
			}
		}
		return false
	}
}

func notOf(prefix string) func(string) bool {
	return func(imp string) bool { return !strings.HasPrefix(imp, prefix) }
}

// TestBuildsElsewhere builds every package for macOS (Nix's other home)
// and FreeBSD: process attributes, file times and huge pages differ by
// system, and a Linux-only field once broke the macOS build unseen.
func TestBuildsElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("cross builds take a minute on a cold build cache")
	}
	for _, target := range []string{"darwin/arm64", "darwin/amd64", "freebsd/amd64"} {
		goos, goarch, _ := strings.Cut(target, "/")
		cmd := exec.Command("go", "build", "-o", os.DevNull, "./...")
		cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("GOOS=%s GOARCH=%s go build ./...: %v\n%s", goos, goarch, err, out)
		}
	}
}
