package git

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// deltaRepo is a bare repository whose history makes deltas: one file of
// 300 lines changed a line at a time, a binary file, an executable and a
// symlink; it returns the repository and its environment.
func deltaRepo(t *testing.T) (string, []string) {
	t.Helper()
	base := t.TempDir()
	env := testEnv(filepath.Join(base, "home"))
	os.MkdirAll(filepath.Join(base, "home"), 0o755)
	w := newWorkRepo(t, env, filepath.Join(base, "work"))
	lines := make([]string, 300)
	for i := range lines {
		lines[i] = fmt.Sprintf("line %d of a file long enough to be worth a delta\n", i)
	}
	bin := bytes.Repeat([]byte{0, 1, 2, 255, 254}, 4000)
	for c := range 6 {
		lines[c*40] = fmt.Sprintf("changed in commit %d\n", c)
		bin[c*1000] ^= 0xff
		w.commit(fmt.Sprintf("c%d", c), map[string]file{
			"big.txt":   {content: strings.Join(lines, "")},
			"data.bin":  {content: string(bin)},
			"run.sh":    {content: fmt.Sprintf("#!/bin/sh\necho %d\n", c), exec: true},
			"link":      {symlink: "big.txt"},
			"sub/a.txt": {content: strings.Repeat("a", c+1)},
		})
	}
	w.git("tag", "-a", "-m", "tagged", "v1")
	bare := filepath.Join(base, "bare.git")
	runGit(t, env, base, "clone", "--quiet", "--bare", w.dir, bare)
	return bare, env
}

// packOf is `git pack-objects` of every object of repo; ofs asks for
// deltas by offset, else by id.
func packOf(t *testing.T, repo string, env []string, ofs bool) []byte {
	t.Helper()
	args := []string{"--git-dir=" + repo, "pack-objects", "--revs", "--all", "--stdout", "-q"}
	if ofs {
		args = append(args, "--delta-base-offset")
	}
	cmd := exec.Command("git", args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git pack-objects: %v", err)
	}
	return out
}

// TestStorePackMatchesIndexPack: a pack stored by storePack is the pack
// received, under git's name for it, with the index git index-pack writes
// for it byte for byte; git reads the repository as sound.
func TestStorePackMatchesIndexPack(t *testing.T) {
	t.Parallel()
	src, env := deltaRepo(t)
	for _, ofs := range []bool{true, false} {
		t.Run(fmt.Sprintf("ofs-delta=%v", ofs), func(t *testing.T) {
			t.Parallel()
			pack := packOf(t, src, env, ofs)
			repo := filepath.Join(t.TempDir(), "r.git")
			if err := initBare(repo, "test"); err != nil {
				t.Fatal(err)
			}
			objs, err := storePack(repo, bytes.NewReader(pack))
			if err != nil {
				t.Fatal(err)
			}
			deltas := 0
			for _, e := range objs {
				if e.typ == objOfsDelta && ofs || e.typ == objRefDelta && !ofs {
					deltas++
				}
			}
			if deltas == 0 {
				t.Fatalf("the pack has no deltas of the kind tested")
			}
			stored, _ := filepath.Glob(filepath.Join(repo, "objects", "pack", "*"))
			if len(stored) != 2 {
				t.Fatalf("objects/pack holds %q, want a pack and its index", stored)
			}
			name := strings.TrimSuffix(stored[0], ".idx")
			got, err := os.ReadFile(name + ".pack")
			if err != nil || !bytes.Equal(got, pack) {
				t.Fatalf("stored pack differs from the pack received (%v)", err)
			}
			ref := filepath.Join(t.TempDir(), "ref.idx")
			cmd := exec.Command("git", "index-pack", "-o", ref, name+".pack")
			cmd.Env = env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git index-pack: %v\n%s", err, out)
			}
			want, _ := os.ReadFile(ref)
			if idx, _ := os.ReadFile(name + ".idx"); !bytes.Equal(idx, want) {
				t.Errorf("index differs from git index-pack's (%d and %d bytes)", len(idx), len(want))
			}
			if h := filepath.Base(name); h != "pack-"+fmt.Sprintf("%x", pack[len(pack)-20:]) {
				t.Errorf("pack named %s", h)
			}
			for _, ref := range []string{"main", "v1"} {
				id := runGit(t, env, src, "--git-dir=.", "rev-parse", ref)
				os.MkdirAll(filepath.Join(repo, "refs", "tags"), 0o755)
				os.WriteFile(filepath.Join(repo, "refs", "tags", ref), []byte(id+"\n"), 0o644)
			}
			runGit(t, env, repo, "--git-dir=.", "fsck", "--strict", "--no-dangling")
			if a, b := runGit(t, env, repo, "--git-dir=.", "cat-file", "-p", "main:big.txt"), runGit(t, env, src, "--git-dir=.", "cat-file", "-p", "main:big.txt"); a != b {
				t.Error("big.txt differs")
			}
		})
	}
}

// TestStorePackRefuses: a pack whose bytes are damaged, cut short or
// followed by more is refused, and nothing of it stays in the repository.
func TestStorePackRefuses(t *testing.T) {
	t.Parallel()
	src, env := deltaRepo(t)
	pack := packOf(t, src, env, true)
	flip := func(at int) []byte {
		b := bytes.Clone(pack)
		b[at] ^= 0x40
		return b
	}
	for name, p := range map[string][]byte{
		"header":        flip(1),
		"middle":        flip(len(pack) / 2),
		"trailer":       flip(len(pack) - 3),
		"cut short":     pack[:len(pack)-100],
		"no trailer":    pack[:len(pack)-20],
		"data after it": append(bytes.Clone(pack), 0),
		"empty":         nil,
		"object count":  append(append(bytes.Clone(pack[:11]), pack[11]+1), pack[12:]...),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			repo := filepath.Join(t.TempDir(), "r.git")
			if err := initBare(repo, "test"); err != nil {
				t.Fatal(err)
			}
			if _, err := storePack(repo, bytes.NewReader(p)); err == nil {
				t.Fatal("accepted")
			}
			if left, _ := os.ReadDir(filepath.Join(repo, "objects", "pack")); len(left) != 0 {
				t.Errorf("left %v", left)
			}
		})
	}
}

func TestApplyDelta(t *testing.T) {
	base := []byte("0123456789")
	for _, c := range []struct {
		name  string
		delta []byte
		want  string // "" for an error
	}{
		{"copy and insert", []byte{10, 5, 0x91, 2, 3, 2, 'a', 'b'}, "234ab"},
		{"copy past the base", []byte{10, 5, 0x91, 8, 5}, ""},
		{"wrong base size", []byte{9, 1, 1, 'a'}, ""},
		{"short of its size", []byte{10, 6, 1, 'a'}, ""},
		{"past its size", []byte{10, 1, 2, 'a', 'b'}, ""},
		{"opcode 0", []byte{10, 1, 0}, ""},
		{"cut insert", []byte{10, 3, 3, 'a'}, ""},
	} {
		got, err := applyDelta(base, c.delta)
		if c.want == "" && err == nil {
			t.Errorf("%s: %q, want an error", c.name, got)
		}
		if c.want != "" && (err != nil || string(got) != c.want) {
			t.Errorf("%s: %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}
