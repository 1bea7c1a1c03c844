package git

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/reftest"
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
			repo, stored := storeNew(t, pack)
			readsAsGit(t, repo, stored)
			objs, _, err := readPack(bytes.NewReader(pack), io.Discard)
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
			files, _ := filepath.Glob(filepath.Join(repo, "objects", "pack", "*"))
			if len(files) != 2 {
				t.Fatalf("objects/pack holds %q, want a pack and its index", files)
			}
			name := strings.TrimSuffix(files[0], ".idx")
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
		// The sender's size is not believed before the delta bears it
		// out: this panicked in make (cap out of range).
		{"size of 2^62", []byte{10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 1, 'x'}, ""},
		{"size of 2^40", []byte{10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 1, 'x'}, ""},
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

// rawObject is an object of a pack built by buildPack: a whole object, or
// a delta on the object at index base (by offset) or with id baseID.
type rawObject struct {
	typ    byte
	data   []byte
	base   int
	baseID []byte
}

// buildPack writes a version-2 pack of objs in that order.
func buildPack(t *testing.T, objs []rawObject) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("PACK")
	b.Write(binary.BigEndian.AppendUint32(nil, 2))
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(objs))))
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		size := len(o.data)
		c := o.typ<<4 | byte(size&15)
		size >>= 4
		for size > 0 {
			b.WriteByte(c | 0x80)
			c = byte(size & 0x7f)
			size >>= 7
		}
		b.WriteByte(c)
		switch o.typ {
		case objOfsDelta:
			back := offsets[i] - offsets[o.base]
			enc := []byte{byte(back & 0x7f)}
			for back >>= 7; back > 0; back >>= 7 {
				back--
				enc = append([]byte{byte(0x80 | back&0x7f)}, enc...)
			}
			b.Write(enc)
		case objRefDelta:
			b.Write(o.baseID)
		}
		zw := zlib.NewWriter(&b)
		zw.Write(o.data)
		zw.Close()
	}
	sum := sha1.Sum(b.Bytes())
	b.Write(sum[:])
	return b.Bytes()
}

// blobID is git's id of a blob.
func blobID(data []byte) []byte {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return h.Sum(nil)
}

// delta is a git delta: copy all of a base of n bytes, then insert add.
func delta(n int, add string) []byte {
	varint := func(v int) []byte {
		var out []byte
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v == 0 {
				return append(out, c)
			}
			out = append(out, c|0x80)
		}
	}
	d := append(varint(n), varint(n+len(add))...)
	// copy offset 0, size n (n < 65536): size bytes 0x10 and 0x20.
	d = append(d, 0x80|0x10|0x20, byte(n), byte(n>>8))
	d = append(d, byte(len(add)))
	return append(d, add...)
}

// TestStorePackDeltaOrders: deltas whose bases come later in the pack, an
// offset delta on an id delta, and a long chain of id deltas stored in
// reverse are resolved as git index-pack resolves them (same index).
func TestStorePackDeltaOrders(t *testing.T) {
	t.Parallel()
	reftest.Need(t, "git")
	a, bb := []byte("aaaaaaaaaa"), []byte("bbbbbbbbbb")
	chain := []rawObject{{typ: objBlob, data: []byte("root\n")}}
	content := []byte("root\n")
	for i := range 2000 {
		add := fmt.Sprintf("%d\n", i)
		chain = append(chain, rawObject{typ: objRefDelta, data: delta(len(content), add), baseID: blobID(content)})
		content = append(content, add...)
	}
	slices.Reverse(chain[1:])
	for name, objs := range map[string][]rawObject{
		"base later": {
			{typ: objBlob, data: a},
			{typ: objRefDelta, data: delta(10, "!"), baseID: blobID(bb)},
			{typ: objOfsDelta, data: delta(11, "?"), base: 1},
			{typ: objOfsDelta, data: []byte{10, 10, 10, 'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b', 'b'}, base: 0},
		},
		"reversed chain": chain,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pack := buildPack(t, objs)
			repo, stored := storeNew(t, pack)
			readsAsGit(t, repo, stored)
			idxs, _ := filepath.Glob(filepath.Join(repo, "objects", "pack", "*.idx"))
			if len(idxs) != 1 {
				t.Fatalf("indexes %q", idxs)
			}
			ref := filepath.Join(t.TempDir(), "ref.idx")
			cmd := exec.Command("git", "index-pack", "-o", ref, strings.TrimSuffix(idxs[0], ".idx")+".pack")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("git index-pack: %v\n%s", err, out)
			}
			want, _ := os.ReadFile(ref)
			if got, _ := os.ReadFile(idxs[0]); !bytes.Equal(got, want) {
				t.Errorf("index differs from git index-pack's")
			}
		})
	}
}

// storeNew stores pack in a new repository and returns both.
func storeNew(t *testing.T, pack []byte) (string, *storedPack) {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "r.git")
	if err := initBare(repo, "test"); err != nil {
		t.Fatal(err)
	}
	stored, err := storePack(repo, bytes.NewReader(pack))
	if err != nil {
		t.Fatal(err)
	}
	return repo, stored
}

// readsAsGit checks that packReader reads every object of pack, stored in
// repo, as git cat-file --batch reads it from repo: type and bytes, kept
// or copied out, in pack order and in reverse (bases from the cache, and
// not).
func readsAsGit(t *testing.T, repo string, pack *storedPack) {
	t.Helper()
	var ids []string
	for _, e := range pack.objs {
		ids = append(ids, fmt.Sprintf("%x", e.id))
	}
	cmd := exec.Command("git", "--git-dir="+repo, "cat-file", "--batch")
	cmd.Stdin = strings.NewReader(strings.Join(ids, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git cat-file --batch: %v", err)
	}
	type object struct {
		typ  string
		data []byte
	}
	want := map[string]object{}
	for _, id := range ids {
		line, rest, _ := bytes.Cut(out, []byte("\n"))
		var gotID, typ string
		var size int
		if _, err := fmt.Sscanf(string(line), "%s %s %d", &gotID, &typ, &size); err != nil || gotID != id || len(rest) < size+1 {
			t.Fatalf("git cat-file --batch: %q for %s", line, id)
		}
		want[id] = object{typ, rest[:size]}
		out = rest[size+1:]
	}
	p, err := openPack(context.Background(), pack)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close(nil)
	reversed := slices.Clone(ids)
	slices.Reverse(reversed)
	for _, order := range [][]string{ids, reversed} {
		for _, id := range order {
			typ, data, err := p.nextTo(id, true, nil)
			if err != nil || typ != want[id].typ || !bytes.Equal(data, want[id].data) {
				t.Fatalf("%s: %s of %d bytes (%v), git reads a %s of %d bytes", id, typ, len(data), err, want[id].typ, len(want[id].data))
			}
			var copied bytes.Buffer
			if _, _, err := p.nextTo(id, false, &copied); err != nil || !bytes.Equal(copied.Bytes(), want[id].data) {
				t.Fatalf("%s copied: %d bytes (%v), git reads %d", id, copied.Len(), err, len(want[id].data))
			}
		}
	}
}

// TestPackReaderDamage: a stored pack damaged on disk after it was stored,
// or an object it lacks, is read as damage, never as an object.
func TestPackReaderDamage(t *testing.T) {
	t.Parallel()
	src, env := deltaRepo(t)
	raw := packOf(t, src, env, true)
	_, pack := storeNew(t, raw)
	p, err := openPack(context.Background(), pack)
	if err != nil {
		t.Fatal(err)
	}
	var me *missingError
	if _, _, err := p.nextTo(strings.Repeat("ab", 20), true, nil); !errors.As(err, &me) {
		t.Errorf("an object not in the pack: %v, want missing", err)
	}
	p.close(nil)
	// Every object, whole or a delta, with one byte of its data flipped
	// on disk (and with its data cut to nothing).
	for i, e := range pack.objs {
		id := fmt.Sprintf("%x", e.id)
		for _, how := range []string{"flip", "cut"} {
			if err := os.WriteFile(pack.name+".pack", raw, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(pack.name+".pack", os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if how == "flip" {
				at := e.data + (e.end-e.data)/2
				f.WriteAt([]byte{raw[at] ^ 0x55}, at)
			} else {
				f.Truncate(e.data)
			}
			f.Close()
			p, err := openPack(context.Background(), pack)
			if err != nil {
				t.Fatal(err)
			}
			typ, data, err := p.nextTo(id, true, nil)
			p.close(nil)
			var de *damagedError
			if !errors.As(err, &de) {
				t.Errorf("object %d (type %d) %s: read a %s of %d bytes (%v), want damage", i, e.typ, how, typ, len(data), err)
			}
		}
	}
}

// TestPackReaderCancel: a context cancelled while an object streams ends
// the read there, with the context's error (not damage).
func TestPackReaderCancel(t *testing.T) {
	t.Parallel()
	data := make([]byte, 8<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	_, pack := storeNew(t, buildPack(t, []rawObject{{typ: objBlob, data: data}}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := openPack(ctx, pack)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close(nil)
	written := 0
	dst := writerFunc(func(b []byte) (int, error) {
		cancel()
		written += len(b)
		return len(b), nil
	})
	if _, _, err := p.nextTo(fmt.Sprintf("%x", blobID(data)), false, dst); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancelling: %v, want context.Canceled", err)
	}
	if written >= len(data) {
		t.Errorf("the whole object was read after cancelling")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
