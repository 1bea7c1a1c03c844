package gnutar

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
)

// node is one entry of a test tree. Modes are the raw ones written to disk;
// WriteFS must normalise them as GNU tar sees them after normaliseModes.
type node struct {
	path   string
	mode   fs.FileMode // permission bits; fs.ModeDir for directories
	data   string
	target string // symlink target; makes the node a symlink
}

func dirNode(p string, perm fs.FileMode) node { return node{path: p, mode: fs.ModeDir | perm} }
func fileNode(p string, perm fs.FileMode, data string) node {
	return node{path: p, mode: perm, data: data}
}
func linkNode(p, target string) node { return node{path: p, target: target} }

// buildTree writes nodes under root. Parents are created as needed (0755);
// directory modes are applied last, deepest first, so 0500 cannot block.
func buildTree(t testing.TB, root string, nodes []node) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	var dirs []node
	for _, n := range nodes {
		p := filepath.Join(root, filepath.FromSlash(n.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case n.target != "":
			err = os.Symlink(n.target, p)
		case n.mode.IsDir():
			err = os.MkdirAll(p, 0o755)
			dirs = append(dirs, n)
		default:
			if err = os.WriteFile(p, []byte(n.data), 0o600); err == nil {
				err = os.Chmod(p, n.mode.Perm())
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(dirs, func(a, b node) int { return strings.Count(b.path, "/") - strings.Count(a.path, "/") })
	for _, d := range dirs {
		if err := os.Chmod(filepath.Join(root, filepath.FromSlash(d.path)), d.mode.Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

func rep(s string, n int) string { return strings.Repeat(s, n) }

// treeCases are the trees compared byte for byte with GNU tar.
func treeCases() []struct {
	name  string
	top   string
	nodes []node
} {
	long255 := rep("c", 255)
	return []struct {
		name  string
		top   string
		nodes []node
	}{
		{name: "empty", top: "e-vendor"},
		{name: "basic", top: "name-vendor", nodes: []node{
			fileNode("Cargo.lock", 0o600, "# lock\n"),
			dirNode(".cargo", 0o700),
			fileNode(".cargo/config.toml", 0o664, "[source]\n"),
			fileNode("empty", 0o640, ""),
			fileNode("bin/run", 0o700, "#!/bin/sh\necho hi\n"),
			fileNode("bin/group-exec", 0o610, "x"),
			fileNode("bin/other-exec", 0o601, "x"),
			fileNode("bin/all", 0o777, "x"),
			dirNode("empty-dir", 0o750),
			dirNode("deep/er/and/deeper/still", 0o775),
			fileNode("deep/er/f", 0o644, "deep\n"),
			linkNode("link", "Cargo.lock"),
			linkNode("dangling", "does/not/exist"),
			linkNode("up", "../outside"),
			linkNode("abs", "/etc/passwd"),
			linkNode("dirlink", "deep/er"),
		}},
		{name: "sort order", top: "s", nodes: []node{
			fileNode("a/b", 0o644, "a/b"),
			fileNode("a-b", 0o644, "a-b"),
			fileNode("a.b", 0o644, "a.b"),
			fileNode("A", 0o644, "A"),
			fileNode("_", 0o644, "_"),
			fileNode("a b", 0o644, "space"),
			fileNode("a0", 0o644, ""),
			fileNode("B/a", 0o644, ""),
			fileNode("b", 0o644, ""),
			fileNode("~", 0o644, ""),
			fileNode("é", 0o644, "e acute"),
			fileNode("e", 0o644, ""),
			fileNode("日本語/ファイル.txt", 0o644, "unicode\n"),
			fileNode("ab/c", 0o644, ""),
			fileNode("ab.d/c", 0o644, ""),
			fileNode("ab-/c", 0o644, ""),
			fileNode(".hidden", 0o644, ""),
			fileNode("-dash", 0o644, ""),
			fileNode("with space/and more spaces ", 0o644, ""),
			fileNode(`back\slash`, 0o644, ""),
			fileNode("tab\there", 0o644, ""),
			fileNode(`"quoted" 'single' *?[x]`, 0o644, ""),
			fileNode("\x7f\x01ctl", 0o644, ""),
		}},
		{name: "long names", top: "long-vendor", nodes: []node{
			fileNode(rep("f", 95), 0o644, "95+top"), // 12+95 > 100
			fileNode(rep("g", 88), 0o644, "100"),    // "long-vendor/" is 12 bytes: exactly 100
			fileNode(rep("h", 89), 0o644, "101"),
			fileNode(rep("i", 87), 0o644, "99"),
			dirNode(rep("d", 87), 0o755), // with its slash: exactly 100
			dirNode(rep("D", 88), 0o755), // 101
			fileNode(rep("D", 88)+"/x", 0o644, "in a long dir"),
			fileNode(rep("C", 255), 0o755, "255-byte component"),
			fileNode(long255+"/"+long255, 0o644, "> 500 bytes"),
			fileNode(long255+"/"+rep("q", 242), 0o644, "exactly 511 bytes: NUL fills the block"),
			fileNode(long255+"/"+rep("r", 243), 0o644, "exactly 512 bytes: NUL needs a block"),
			fileNode(long255+"/"+rep("s", 244), 0o644, "513"),
			linkNode("t99", rep("t", 99)),
			linkNode("t100", rep("t", 100)),
			linkNode("t101", rep("t", 101)),
			linkNode("t300", strings.Repeat("../", 100)),
			linkNode("t512", rep("u", 255)+"/"+rep("u", 256)),
			linkNode(rep("l", 120), rep("L", 150)), // K then L
			linkNode(rep("m", 120), "short"),
			fileNode(rep("ü", 60), 0o644, "120 bytes of UTF-8"),
		}},
		{name: "sizes", top: "z", nodes: []node{
			fileNode("0", 0o644, ""),
			fileNode("1", 0o644, "x"),
			fileNode("511", 0o644, rep("a", 511)),
			fileNode("512", 0o644, rep("b", 512)),
			fileNode("513", 0o644, rep("c", 513)),
			fileNode("10240", 0o644, rep("d", 10240)),
			fileNode("100000", 0o755, rep("0123456789", 10000)),
		}},
		// top dir + file header + k data blocks + 2 end blocks around a record of 20.
		{name: "record exact", top: "r", nodes: []node{fileNode("f", 0o644, rep("x", 16*512))}},
		{name: "record minus one", top: "r", nodes: []node{fileNode("f", 0o644, rep("x", 15*512))}},
		{name: "record plus one", top: "r", nodes: []node{fileNode("f", 0o644, rep("x", 17*512))}},
		{name: "nested top", top: "some/where-vendor", nodes: []node{fileNode("f", 0o644, "f")}},
	}
}

func TestWriteFSMatchesGNUTar(t *testing.T) {
	gnuTar(t)
	for _, tc := range treeCases() {
		t.Run(tc.name, func(t *testing.T) {
			tmp := t.TempDir()
			root := filepath.Join(tmp, filepath.FromSlash(tc.top))
			buildTree(t, root, tc.nodes)

			// Ours first, on the raw modes: WriteFS normalises.
			var got bytes.Buffer
			tw := NewWriter(&got)
			if err := WriteFS(t.Context(), tw, os.DirFS(root), tc.top); err != nil {
				t.Fatal(err)
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}

			normaliseModes(t, root)
			want := runGNUTar(t, tmp, tc.top)
			if d := diffTar(got.Bytes(), want); d != "" {
				t.Fatal(d)
			}
			checkReadable(t, got.Bytes(), tc.top, tc.nodes)
		})
	}
}

// checkReadable lists our stream with `tar -tvf -` and checks every node is
// in it, with the type tar reports.
func checkReadable(t *testing.T, stream []byte, top string, nodes []node) {
	t.Helper()
	cmd := exec.Command(gnuTar(t), "--quoting-style=literal", "-tvf", "-")
	cmd.Env = tarEnv()
	cmd.Stdin = bytes.NewReader(stream)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("tar -tvf on our stream: %v\n%s", err, stderr.Bytes())
	}
	listing := string(out)
	for _, n := range nodes {
		name := top + "/" + n.path
		want := "-rw"
		switch {
		case n.target != "":
			want, name = "lrwxrwxrwx", name+" -> "+n.target
		case n.mode.IsDir():
			want, name = "drwxr-xr-x", name+"/"
		case n.mode&0o111 != 0:
			want = "-rwxr-xr-x"
		default:
			want = "-rw-r--r--"
		}
		if !strings.Contains(listing, "\n"+want) && !strings.HasPrefix(listing, want) || !strings.Contains(listing, " "+name+"\n") {
			t.Errorf("tar -tvf: no %s entry %q in\n%s", want, name, listing)
		}
	}
}

func TestWriteFSUnsupportedTypes(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, p string)
		want string
	}{
		{"fifo", func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skipf("mkfifo: %v", err)
			}
		}, "named pipe"},
		{"not utf-8", func(t *testing.T, p string) {
			if err := os.WriteFile(p+"-\xe9", nil, 0o644); err != nil {
				t.Skipf("non-UTF-8 name: %v", err)
			}
		}, "UTF-8"},
		{"socket", func(t *testing.T, p string) {
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Skipf("unix socket: %v", err)
			}
			t.Cleanup(func() { l.Close() })
		}, "socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Unix socket paths are limited to ~108 bytes: keep the root short.
			root, err := os.MkdirTemp("", "gt")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(root) })
			if err := os.Mkdir(filepath.Join(root, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			tc.make(t, filepath.Join(root, "sub", "x"))
			err = WriteFS(t.Context(), NewWriter(io.Discard), os.DirFS(root), "top")
			if err == nil || !strings.Contains(err.Error(), "sub/x") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("WriteFS = %v, want an error naming sub/x as a %s", err, tc.want)
			}
		})
	}
}

func TestWriteFSMapFS(t *testing.T) {
	fsys := fstest.MapFS{
		"b":        {Data: []byte("bee"), Mode: 0o700},
		"a/x":      {Data: []byte("x")},
		"a-b":      {Mode: fs.ModeDir | 0o700},
		"l":        {Data: []byte("a/x"), Mode: fs.ModeSymlink | 0o777},
		"dev/null": {Mode: fs.ModeDevice | fs.ModeCharDevice},
	}
	err := WriteFS(t.Context(), NewWriter(io.Discard), fsys, "t")
	if err == nil || !strings.Contains(err.Error(), "dev/null") || !strings.Contains(err.Error(), "character device") {
		t.Fatalf("WriteFS with a device = %v, want an error naming dev/null", err)
	}
	delete(fsys, "dev/null")

	var buf bytes.Buffer
	tw := NewWriter(&buf)
	if err := WriteFS(t.Context(), tw, fsys, "t"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	got := listStream(t, buf.Bytes())
	want := []string{"t/ d 0755", "t/a/ d 0755", "t/a/x 0 0644 x", "t/a-b/ d 0755", "t/b 0 0755 bee", "t/l 2 0777 ->a/x"}
	if !slices.Equal(got, want) {
		t.Errorf("entries:\n got %q\nwant %q", got, want)
	}
}

func TestWriteFSErrors(t *testing.T) {
	ok := fstest.MapFS{"f": {Data: []byte("data")}}
	for _, prefix := range []string{"", ".", "/abs", "a/../b", "a/", "nul\x00"} {
		if err := WriteFS(t.Context(), NewWriter(io.Discard), ok, prefix); err == nil {
			t.Errorf("WriteFS prefix %q: no error", prefix)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := WriteFS(ctx, NewWriter(io.Discard), ok, "t"); !errors.Is(err, context.Canceled) {
		t.Errorf("WriteFS on a cancelled context = %v", err)
	}
	if err := WriteFS(t.Context(), NewWriter(io.Discard), fstest.MapFS{"f": {}}, "t"); err != nil {
		t.Errorf("WriteFS: %v", err)
	}
	file := fstest.MapFS{"f": {Data: []byte("x")}}
	sub, _ := fs.Sub(file, "f")
	if err := WriteFS(t.Context(), NewWriter(io.Discard), sub, "t"); err == nil {
		t.Error("WriteFS on a file root: no error")
	}
	// A file that is not the size it was listed with.
	for name, fsys := range map[string]fs.FS{
		"shrank": lyingFS{MapFS: fstest.MapFS{"f": {Data: []byte("12345")}}, size: 9},
		"grew":   lyingFS{MapFS: fstest.MapFS{"f": {Data: []byte("12345")}}, size: 2},
	} {
		err := WriteFS(t.Context(), NewWriter(io.Discard), fsys, "t")
		if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "f:") {
			t.Errorf("%s: WriteFS = %v", name, err)
		}
	}
}

// lyingFS reports every file with a fixed size whatever its content.
type lyingFS struct {
	fstest.MapFS
	size int64
}

func (l lyingFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := l.MapFS.ReadDir(name)
	for i, e := range entries {
		entries[i] = lyingEntry{e, l.size}
	}
	return entries, err
}

type lyingEntry struct {
	fs.DirEntry
	size int64
}

func (e lyingEntry) Info() (fs.FileInfo, error) {
	info, err := e.DirEntry.Info()
	return lyingInfo{info, e.size}, err
}

type lyingInfo struct {
	fs.FileInfo
	size int64
}

func (i lyingInfo) Size() int64 { return i.size }

// TestWriteFSStopsAtWriteError makes the underlying writer fail at each write
// in turn and checks that WriteFS returns that error and nothing is written
// after it.
func TestWriteFSStopsAtWriteError(t *testing.T) {
	fsys := fstest.MapFS{
		"a":                 {Data: []byte(rep("a", 1000))},
		"b/" + rep("n", 99): {Data: []byte("long name")},
		"c":                 {Data: []byte(rep("x", 200)), Mode: fs.ModeSymlink},
	}
	var total failWriter
	tw := NewWriter(&total)
	if err := WriteFS(t.Context(), tw, fsys, "t"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	for fail := 1; fail <= total.calls; fail++ {
		w := &failWriter{failAt: fail}
		tw := NewWriter(w)
		err := WriteFS(t.Context(), tw, fsys, "t")
		if err == nil {
			err = tw.Close()
		}
		if !errors.Is(err, errBroken) {
			t.Fatalf("failing at write %d: got %v, want %v", fail, err, errBroken)
		}
		if w.calls != fail {
			t.Fatalf("failing at write %d: %d writes attempted", fail, w.calls)
		}
		if err := tw.Close(); !errors.Is(err, errBroken) {
			t.Fatalf("Close after failing write %d = %v", fail, err)
		}
		if w.calls != fail {
			t.Fatalf("Close after failing write %d wrote again", fail)
		}
	}
}

// TestWriteFSHardLinks checks that hard links are archived as regular files,
// as GNU tar does with --hard-dereference (documented in the package).
func TestWriteFSHardLinks(t *testing.T) {
	tar := gnuTar(t)
	tmp := t.TempDir()
	root := filepath.Join(tmp, "h")
	buildTree(t, root, []node{fileNode("a", 0o644, "same\n")})
	if err := os.Link(filepath.Join(root, "a"), filepath.Join(root, "b")); err != nil {
		t.Skipf("hard link: %v", err)
	}
	var got bytes.Buffer
	tw := NewWriter(&got)
	if err := WriteFS(t.Context(), tw, os.DirFS(root), "h"); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tar, append(append([]string{}, gnuTarFlags...), "--hard-dereference", "-cf", "-", "h")...)
	cmd.Dir, cmd.Env = tmp, tarEnv()
	want, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if d := diffTar(got.Bytes(), want); d != "" {
		t.Fatal(d)
	}
}

// listStream reads a stream with archive/tar-independent parsing of our own
// headers: "name type mode [data|->target]" per entry, LongLink resolved.
func listStream(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	var longName, longLink string
	for pos := 0; pos+blockSize <= len(b); {
		h := b[pos : pos+blockSize]
		if bytes.Equal(h, make([]byte, blockSize)) {
			break
		}
		size := parseSize(h[124:136])
		data := string(b[pos+blockSize : pos+blockSize+int(size)])
		pos += blockSize + int(size+blockSize-1)/blockSize*blockSize
		name := strings.TrimRight(string(h[0:100]), "\x00")
		link := strings.TrimRight(string(h[157:257]), "\x00")
		switch h[156] {
		case 'L':
			longName = strings.TrimSuffix(data, "\x00")
			continue
		case 'K':
			longLink = strings.TrimSuffix(data, "\x00")
			continue
		}
		if longName != "" {
			name, longName = longName, ""
		}
		if longLink != "" {
			link, longLink = longLink, ""
		}
		e := name + " " + string(h[156]) + " " + strings.TrimLeft(string(h[100:107]), "0")
		e = strings.Replace(e, " 5 ", " d ", 1)
		e = strings.Replace(e, " 755", " 0755", 1)
		e = strings.Replace(e, " 644", " 0644", 1)
		e = strings.Replace(e, " 777", " 0777", 1)
		switch h[156] {
		case '0':
			e += " " + data
		case '2':
			e += " ->" + link
		}
		out = append(out, e)
	}
	return out
}

func parseSize(f []byte) int64 {
	if f[0] == 0x80 {
		var v int64
		for _, c := range f[1:] {
			v = v<<8 | int64(c)
		}
		return v
	}
	var v int64
	for _, c := range f {
		if c < '0' || c > '7' {
			break
		}
		v = v*8 + int64(c-'0')
	}
	return v
}

// manySmallFiles builds n files of a few hundred bytes spread over
// directories of 50, returning the root.
func manySmallFiles(b testing.TB, n int) string {
	root := filepath.Join(b.TempDir(), "bench-vendor")
	var nodes []node
	for i := range n {
		p := path.Join("crate"+strconv.Itoa(i/50), "src", "f"+strconv.Itoa(i%50)+".rs")
		nodes = append(nodes, fileNode(p, 0o644, rep("fn main() {}\n", 1+i%40)))
	}
	buildTree(b, root, nodes)
	return root
}

func BenchmarkWriteFS(b *testing.B) {
	root := manySmallFiles(b, 5000)
	fsys := os.DirFS(root)
	var n countWriter
	tw := NewWriter(&n)
	if err := WriteFS(b.Context(), tw, fsys, "bench-vendor"); err != nil {
		b.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		tw := NewWriter(io.Discard)
		if err := WriteFS(b.Context(), tw, fsys, "bench-vendor"); err != nil {
			b.Fatal(err)
		}
		if err := tw.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(5000, "files/op")
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
