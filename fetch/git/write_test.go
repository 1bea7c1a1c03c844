package git

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// plainRepo serves, under root/plain.git, commits whose trees git checks
// out with nothing more than writing blobs (PLAIN: files, an executable,
// symlinks to a file, to a directory and to nowhere, one blob and one tree
// at two paths each, an empty file, a large file, names with spaces,
// Unicode, dashes and dots, .gitignore, .github/, an empty tree) and one
// that needs git (ATTR: a .gitattributes two levels down).
func plainRepo(t *testing.T, root string) map[string]string {
	t.Helper()
	base := t.TempDir()
	env := testEnv(filepath.Join(base, "home"))
	os.MkdirAll(filepath.Join(base, "home"), 0o755)
	w := newWorkRepo(t, env, filepath.Join(base, "work"))
	same := "the same bytes\n"
	commits := map[string]string{}
	commits["PLAIN0"] = w.commit("plain", map[string]file{
		"README.md":                      {content: "# plain\n"},
		"Cargo.toml":                     {content: "[package]\nname = \"plain\"\nversion = \"0.1.0\"\n"},
		"src/lib.rs":                     {content: "pub fn f() {}\n"},
		"src/bin/run.sh":                 {content: "#!/bin/sh\n", exec: true},
		"link":                           {symlink: "README.md"},
		"dirlink":                        {symlink: "src"},
		"dangling":                       {symlink: "../nowhere"},
		"a/same.txt":                     {content: same},
		"b/same.txt":                     {content: same},
		"twin1/x/y.txt":                  {content: "twin\n"},
		"twin2/x/y.txt":                  {content: "twin\n"},
		"empty":                          {content: ""},
		"big.bin":                        {content: strings.Repeat("0123456789abcdef", 1<<16)},
		"with space/é ü.txt":             {content: "unicode\n"},
		"-dash":                          {content: "dash\n"},
		"..dots":                         {content: "dots\n"},
		".gitignore":                     {content: "target\n"},
		".github/workflows/ci.yml":       {content: "on: push\n"},
		"deep/er/and/deeper/still/f.txt": {content: "deep\n"},
	})
	// An empty directory as a tree entry, which git's own commands never
	// make: mktree and commit-tree.
	tree := w.git("rev-parse", "HEAD^{tree}")
	empty := w.git("hash-object", "-t", "tree", "-w", "/dev/null")
	listing := w.git("ls-tree", tree)
	listing += "\n040000 tree " + empty + "\tvoid"
	withEmpty := runGitInput(t, env, w.dir, listing+"\n", "mktree")
	commits["PLAIN"] = w.git("commit-tree", "-p", "HEAD", "-m", "empty dir", withEmpty)
	w.git("update-ref", "refs/heads/main", commits["PLAIN"])
	commits["ATTR"] = w.commit("attributes", map[string]file{
		"deep/er/.gitattributes": {content: "*.txt eol=crlf\n"},
	})
	runGit(t, env, base, "clone", "--quiet", "--bare", w.dir, filepath.Join(root, "plain.git"))
	return commits
}

// runGitInput is runGit with input on stdin.
func runGitInput(t *testing.T, env []string, dir, input string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, env, strings.NewReader(input)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// TestCheckoutWritten: a tree that needs nothing of git's checkout is
// written without git checkout, and is what nix-prefetch-git's procedure
// makes; one with attributes is git's, and is too.
func TestCheckoutWritten(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	commits := plainRepo(t, root)
	srv := serve(t, root, true, 0)
	for _, c := range []string{"PLAIN", "ATTR"} {
		for _, transport := range []string{"file", "http"} {
			t.Run(c+"/"+transport, func(t *testing.T) {
				t.Parallel()
				url := "file://" + root + "/plain.git"
				if transport == "http" {
					url = srv.url("plain")
				}
				gitPath, log := loggingGit(t)
				dest := filepath.Join(t.TempDir(), "out")
				if err := (&Fetcher{Git: gitPath}).Checkout(testCtx(t), url, commits[c], dest); err != nil {
					t.Fatal(err)
				}
				ref, err := referenceTree(t, url, commits[c], false)
				if err != nil {
					t.Fatal(err)
				}
				assertSameTree(t, dest, ref)
				if ran := slices.Contains(subcommands(t, log), "checkout"); ran != (c == "ATTR") {
					t.Errorf("git checkout ran: %v (%q)", ran, subcommands(t, log))
				}
				// Fetched in process, the tree is read back from the
				// pack and written without git.
				if ran := subcommands(t, log); c == "PLAIN" && transport == "http" && len(ran) > 0 {
					t.Errorf("git ran: %q", ran)
				}
			})
		}
	}
}

func TestTreeWriterEntry(t *testing.T) {
	for _, c := range []struct {
		name, mode string
		stops      bool
	}{
		{"lib.rs", "100644", false},
		{"run", "100755", false},
		{"l", "120000", false},
		{"d", "40000", false},
		{".gitignore", "100644", false},
		{".github", "40000", false},
		{".gitmodules", "100644", false},
		{".gitattributes", "100644", true},
		{".GitAttributes", "100644", true},
		{".git", "40000", true},
		{".GIT", "40000", true},
		{".git.", "40000", true},
		{"git~1", "40000", true},
		{".gitmodules", "120000", true},
		{"gitmod~1", "120000", true},
		{"GI7EBA~2", "120000", true},
		{"gitmod~1", "100644", false},
		{"notes~", "100644", false},
		{"a\\b", "100644", true},
		{"a:b", "100644", true},
		{"..", "40000", true},
		{"sub", "160000", true},
		{"odd", "100664", true},
	} {
		w := &treeWriter{dir: t.TempDir()}
		w.entry(c.name, c.mode)
		if stopped := !w.writing(); stopped != c.stops {
			t.Errorf("%q %s: stopped %v (%s), want %v", c.name, c.mode, stopped, w.why, c.stops)
		}
	}
	// A name twice in one tree, also in other case, stops it; in two
	// trees it does not.
	for _, names := range [][]string{{"a", "a"}, {"a", "A"}, {"Cargo.toml", "cargo.TOML"}} {
		w := &treeWriter{dir: t.TempDir()}
		w.tree()
		w.entry(names[0], "100644")
		w.entry(names[1], "40000")
		if w.writing() {
			t.Errorf("%q in one tree: still writing", names)
		}
		w = &treeWriter{dir: t.TempDir()}
		w.tree()
		w.entry(names[0], "100644")
		w.tree()
		w.entry(names[1], "40000")
		if !w.writing() {
			t.Errorf("%q in two trees: stopped (%s)", names, w.why)
		}
	}
}

// TestCheckoutDuplicateNames: a tree holding a symlink and a directory of
// one name (which git's own commands never make, and fetch does not
// refuse) is git's to check out: written blob by blob, the directory's
// files would go where the symlink points, outside the checkout.
func TestCheckoutDuplicateNames(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	os.MkdirAll(outside, 0o755)
	env := testEnv(filepath.Join(base, "home"))
	os.MkdirAll(filepath.Join(base, "home"), 0o755)
	w := newWorkRepo(t, env, filepath.Join(base, "work"))
	w.commit("first", map[string]file{"README.md": {content: "readme\n"}})
	raw := func(id string) string {
		b, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	pwned := runGitInput(t, env, w.dir, "pwned\n", "hash-object", "-w", "--stdin")
	inner := runGitInput(t, env, w.dir, "100644 pwned\x00"+raw(pwned), "hash-object", "-t", "tree", "--literally", "-w", "--stdin")
	target := runGitInput(t, env, w.dir, outside, "hash-object", "-w", "--stdin")
	root := runGitInput(t, env, w.dir, "120000 a\x00"+raw(target)+"40000 a\x00"+raw(inner), "hash-object", "-t", "tree", "--literally", "-w", "--stdin")
	commit := w.git("commit-tree", "-m", "twice", root)
	w.git("update-ref", "refs/heads/main", commit)
	served := filepath.Join(base, "served")
	runGit(t, env, base, "clone", "--quiet", "--bare", w.dir, filepath.Join(served, "dup.git"))
	srv := serve(t, served, true, 0)
	for _, url := range []string{"file://" + served + "/dup.git", srv.url("dup")} {
		dest := filepath.Join(t.TempDir(), "out")
		err := (&Fetcher{}).Checkout(testCtx(t), url, commit, dest)
		if ents, _ := os.ReadDir(outside); len(ents) != 0 {
			t.Fatalf("%s: wrote %v outside the checkout", url, ents)
		}
		ref, rerr := referenceTree(t, url, commit, false)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("%s: checkout: %v; reference: %v", url, err, rerr)
		}
		if err == nil {
			assertSameTree(t, dest, ref)
		}
	}
}

// TestCheckoutWrittenRandomTrees checks out, written by treeWriter, 12
// commits of trees drawn at random (fixed seed) from files, executables,
// symlinks, empty files, shared contents, nested and sibling directories
// with names that sort around '/' and '.', and compares each with
// nix-prefetch-git's procedure.
func TestCheckoutWrittenRandomTrees(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	env := testEnv(filepath.Join(base, "home"))
	os.MkdirAll(filepath.Join(base, "home"), 0o755)
	w := newWorkRepo(t, env, filepath.Join(base, "work"))
	rng := rand.New(rand.NewPCG(15, 2026))
	names := []string{"a", "a.b", "a-b", "a0", "a_", "ab", "b", "lib.rs", "mod", "x y", "ü", "_", "zz", "a.b.c", "0"}
	var commits []string
	for range 12 {
		files := map[string]file{}
		taken := map[string]bool{} // paths and their directories, so none is both
		for range 1 + rng.IntN(30) {
			depth := rng.IntN(4)
			var parts []string
			for range depth + 1 {
				parts = append(parts, names[rng.IntN(len(names))])
			}
			p := strings.Join(parts, "/")
			clash := taken[p]
			for i := 1; i < len(parts); i++ {
				if _, isFile := files[strings.Join(parts[:i], "/")]; isFile {
					clash = true
				}
			}
			if clash {
				continue
			}
			for i := 1; i < len(parts); i++ {
				taken[strings.Join(parts[:i], "/")] = true
			}
			taken[p] = true
			f := file{content: fmt.Sprintf("content %d\n", rng.IntN(5))}
			switch rng.IntN(6) {
			case 0:
				f.exec = true
			case 1:
				f = file{symlink: names[rng.IntN(len(names))]}
			case 2:
				f.content = ""
			}
			files[p] = f
		}
		// Each commit's tree is exactly its files: the work tree is
		// emptied first.
		ents, _ := os.ReadDir(w.dir)
		for _, e := range ents {
			if e.Name() != ".git" {
				os.RemoveAll(filepath.Join(w.dir, e.Name()))
			}
		}
		w.git("rm", "-r", "-q", "--cached", "--ignore-unmatch", ".")
		commits = append(commits, w.commit("random", files))
	}
	served := filepath.Join(base, "served")
	runGit(t, env, base, "clone", "--quiet", "--bare", w.dir, filepath.Join(served, "r.git"))
	url := "file://" + served + "/r.git"
	gitPath, log := loggingGit(t)
	f := &Fetcher{Git: gitPath, CacheDir: t.TempDir()}
	for i, c := range commits {
		dest := filepath.Join(t.TempDir(), "out")
		if err := f.Checkout(testCtx(t), url, c, dest); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		ref, err := referenceTree(t, url, c, false)
		if err != nil {
			t.Fatal(err)
		}
		assertSameTree(t, dest, ref)
	}
	if slices.Contains(subcommands(t, log), "checkout") {
		t.Errorf("git checkout ran: %q", subcommands(t, log))
	}
}
