package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cargohash/cargohash/internal/reftest"
)

// runCLI runs the command in-process and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"cargohash"}, args...), &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// TestNarAgainstNix compares nar-dump and nar-hash with Nix on generated trees.
func TestNarAgainstNix(t *testing.T) {
	nixStore := reftest.Need(t, "nix-store")
	nixHash := reftest.Need(t, "nix-hash")
	nix, feat := reftest.Nix(t)
	root := filepath.Join(t.TempDir(), "tree")
	reftest.MakeTree(t, root)
	paths := []string{root, filepath.Join(root, "big"), filepath.Join(root, "run.sh"), filepath.Join(root, "link-dangling"), filepath.Join(root, "dir")}
	for _, p := range paths {
		out, errOut, code := runCLI(t, "nar-dump", p)
		if want := reftest.Run(t, nixStore, "--dump", p); code != 0 || out != string(want) {
			t.Errorf("nar-dump %s: exit %d (%s), %d bytes, nix-store --dump gives %d", p, code, errOut, len(out), len(want))
		}
		for _, algo := range []string{"sha256", "sha512", "sha1"} {
			for _, form := range []string{"", "--base32", "--base16", "--base64"} {
				args := append(append([]string{}, feat...), "hash", "path", "--type", algo)
				ours := []string{"nar-hash", p, "--type", algo} // flags after PATH on purpose
				if form != "" {
					args = append(args, form)
					ours = append(ours, form)
				}
				want := reftest.Run(t, nix, append(args, p)...)
				got, errOut, code := runCLI(t, ours...)
				if code != 0 || got != string(want) {
					t.Errorf("cargohash %v = %q (exit %d, %s); nix hash path says %q", ours, got, code, errOut, want)
				}
			}
		}
		want := reftest.Run(t, nixHash, "--type", "sha256", "--base32", p)
		if got, _, _ := runCLI(t, "nar-hash", "--base32", p); got != string(want) {
			t.Errorf("nar-hash --base32 %s = %q, nix-hash says %q", p, got, want)
		}
	}
}

func TestHashConvertAgainstNix(t *testing.T) {
	nixHash := reftest.Need(t, "nix-hash")
	nix, feat := reftest.Nix(t)
	for _, algo := range []string{"sha256", "sha512", "sha1"} {
		size := map[string]int{"sha256": 32, "sha512": 64, "sha1": 20}[algo]
		for range 3 {
			d := make([]byte, size)
			rand.Read(d)
			b16 := hex.EncodeToString(d)
			nix32 := strings.TrimSpace(string(reftest.Run(t, nixHash, "--type", algo, "--to-base32", b16)))
			sri := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "to-sri", "--type", algo, b16)...)))
			for _, tc := range []struct{ in, to, want string }{
				{b16, "nix32", nix32},
				{algo + ":" + b16, "nix32", nix32},
				{nix32, "base16", b16},
				{sri, "base16", b16},
				{b16, "sri", sri},
				{nix32, "sri", sri},
			} {
				got, errOut, code := runCLI(t, "hash-convert", "--to", tc.to, tc.in)
				if code != 0 || strings.TrimSpace(got) != tc.want {
					t.Errorf("hash-convert --to %s %s = %q (exit %d, %s), want %q", tc.to, tc.in, got, code, errOut, tc.want)
				}
			}
		}
	}
}

// TestBadInput: each bad input is one clear line on stderr and exit 2.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	fifoDir := filepath.Join(dir, "withfifo")
	os.Mkdir(fifoDir, 0o755)
	if err := exec.Command("mkfifo", filepath.Join(fifoDir, "pipe")).Run(); err != nil {
		t.Fatal(err)
	}
	sockDir := filepath.Join(dir, "withsocket")
	os.Mkdir(sockDir, 0o755)
	l, err := net.Listen("unix", filepath.Join(sockDir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	devDir := filepath.Join(dir, "withdevice")
	os.Mkdir(devDir, 0o755)
	devErr := syscall.Mknod(filepath.Join(devDir, "null"), syscall.S_IFCHR|0o666, 1<<8|3) // like /dev/null (root only)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"nar-hash", filepath.Join(dir, "missing")}, "no such file or directory"},
		{[]string{"nar-dump", filepath.Join(dir, "missing")}, "no such file or directory"},
		{[]string{"nar-hash", fifoDir}, "pipe: unsupported file type"},
		{[]string{"nar-dump", sockDir}, "sock: unsupported file type"},
		{[]string{"nar-hash", "--type", "md6", dir}, "unknown hash algorithm"},
		{[]string{"nar-hash"}, "want exactly one PATH"},
		{[]string{"hash-convert", "sha256:abc"}, "a sha256 hash has 64 (base16), 52 (nix32) or 44 (base64) characters, not 3"},
		{[]string{"hash-convert", "sha256:" + strings.Repeat("e", 52)}, "invalid nix32"},
		{[]string{"hash-convert", "sha999-AAAA"}, "unknown hash algorithm"},
		{[]string{"hash-convert", "--to", "base58", "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, "unknown hash format"},
		{[]string{"nar-hash", "--no-such-flag", dir}, "cargohash: nar-hash: unknown flag --no-such-flag; see 'cargohash nar-hash --help'\n"},
	}
	if devErr == nil {
		tests = append(tests, struct {
			args []string
			want string
		}{[]string{"nar-hash", devDir}, "null: unsupported file type"})
	} else if os.Geteuid() == 0 {
		t.Fatalf("mknod as root: %v", devErr)
	}
	for _, tt := range tests {
		out, errOut, code := runCLI(t, tt.args...)
		if code != exitInput || !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 && !strings.Contains(errOut, "Usage") {
			t.Errorf("cargohash %v: exit %d, stderr %q, stdout %q; want exit 2 and one line with %q", tt.args, code, errOut, out, tt.want)
		}
	}
}

func TestInterspersed(t *testing.T) {
	app := newApp(nil, nil)
	got := strings.Join(interspersed(app, strings.Fields("cargohash nar-hash p --type sha1 --base32")), " ")
	if want := "cargohash nar-hash --type sha1 --base32 -- p"; got != want {
		t.Fatalf("interspersed = %q, want %q", got, want)
	}
}

// TestNarHashInterrupted: nar-hash of a 12 GiB file (sparse) stops when its
// context is cancelled, prints nothing on stdout and exits 130.
func TestNarHashInterrupted(t *testing.T) {
	big := reftest.SparseFile(t, 12<<30)
	ctx, cancel := context.WithCancel(context.Background())
	go cancel()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, []string{"cargohash", "nar-hash", big}, &stdout, &stderr); code != exitCanceled || stdout.Len() != 0 {
		t.Errorf("nar-hash interrupted: exit %d, stdout %q, stderr %q; want exit %d and no output", code, stdout.String(), stderr.String(), exitCanceled)
	}
}
