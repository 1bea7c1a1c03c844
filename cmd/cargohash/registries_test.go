package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/fetchtest"
)

// privateProject serves two crates from a private sparse registry (token
// required for everything, downloads redirected to a CDN) and writes a
// project whose .cargo/config.toml names it "corp". CARGO_HOME is an empty
// directory it returns, and no netrc is read.
func privateProject(t *testing.T, token string) (dir, home string, reg *fetchtest.Registry) {
	reg = fetchtest.NewRegistry(t, fetchtest.RegistryOptions{Auth: fetchtest.AuthOptions{Token: token, Required: true, CDN: true}})
	a := reg.AddCrate("corp-lib", "1.2.0", map[string]string{"src/lib.rs": "pub fn corp() -> u32 { 7 }\n"})
	b := reg.AddCrate("corp-util", "0.3.1", map[string]string{"src/lib.rs": "pub fn util() {}\n"})
	dir = writeProject(t, fetchtest.Lock(a, b))
	writeTree(t, dir, map[string]string{".cargo/config.toml": "[registries.corp]\nindex = \"sparse+" + reg.IndexURL() + "\"\n"})
	home = t.TempDir()
	t.Setenv("CARGO_HOME", home)
	t.Setenv("NETRC", filepath.Join(home, "no-netrc"))
	t.Setenv("CARGO_REGISTRIES_CORP_TOKEN", "")
	return dir, home, reg
}

// TestPrivateRegistryErrors: a missing or refused token is one line on
// stderr naming the registry, the URL, the status and where cargohash
// looked; exit 3, nothing on stdout, the token nowhere.
func TestPrivateRegistryErrors(t *testing.T) {
	const token = "cio-CLI-SECRET-93b1"
	tests := []struct {
		name  string
		env   string // CARGO_REGISTRIES_CORP_TOKEN
		wants []string
	}{
		{"no token", "", []string{`registry "corp" (sparse+{reg}/index/)`, "GET {reg}/index/config.json", "401 Unauthorized", "no token in CARGO_REGISTRIES_CORP_TOKEN, {home}/credentials.toml"}},
		{"wrong token", "wrong-" + token, []string{`registry "corp" (sparse+{reg}/index/)`, "GET {reg}/index/config.json", "403 Forbidden", "the token from CARGO_REGISTRIES_CORP_TOKEN was refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, home, reg := privateProject(t, token)
			t.Setenv("CARGO_REGISTRIES_CORP_TOKEN", tt.env)
			for _, args := range [][]string{
				{"prefetch", "--json"},
				{"staging", "--out", filepath.Join(t.TempDir(), "s")},
				{"vendor", "--out", filepath.Join(t.TempDir(), "v")},
			} {
				out, errOut, code := runCLI(t, append(args, "--cache-dir", t.TempDir(), "--retry-wait", "1ms", "--quiet", dir)...)
				lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
				if code != exitFetch || out != "" || len(lines) != 1 {
					t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 3, no stdout, one line", args[0], code, out, errOut)
				}
				for _, w := range tt.wants {
					w = strings.NewReplacer("{reg}", reg.URL, "{home}", home).Replace(w)
					if !strings.Contains(errOut, w) {
						t.Errorf("%s: stderr %q does not say %q", args[0], errOut, w)
					}
				}
				if strings.Contains(errOut, token) {
					t.Errorf("%s: stderr holds the token: %s", args[0], errOut)
				}
			}
		})
	}
}

// TestPrivateRegistry: with the token in the environment or in
// credentials.toml every command works, the CDN never sees the token, and
// the token is in no output and no file cargohash writes.
func TestPrivateRegistry(t *testing.T) {
	const token = "cio-CLI-SECRET-5e20"
	for _, from := range []string{"environment", "credentials.toml", "credentials"} {
		t.Run(from, func(t *testing.T) {
			dir, home, reg := privateProject(t, token)
			switch from {
			case "environment":
				t.Setenv("CARGO_REGISTRIES_CORP_TOKEN", token)
			default:
				writeTree(t, home, map[string]string{from: "[registries.corp]\ntoken = \"" + token + "\"\n"})
			}
			// Everything cargohash writes — cache, outputs, temporary
			// files — lands under tmp, which is grepped at the end.
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			cache, outs := filepath.Join(tmp, "cache"), filepath.Join(tmp, "outs")
			os.Mkdir(outs, 0o755)
			var printed bytes.Buffer
			for _, args := range [][]string{
				{"prefetch", "--json"},
				{"prefetch"},
				{"staging", "--out", filepath.Join(outs, "staging")},
				{"vendor", "--out", filepath.Join(outs, "vendor")},
				{"vendor", "--layout", "cargo", "--out", filepath.Join(outs, "vendor-cargo")},
				{"tarball", "--out", filepath.Join(outs, "vendor.tar")},
				{"tarball", "--out", filepath.Join(outs, "vendor.tar.gz")},
			} {
				// No --quiet: the progress lines are checked too.
				out, errOut, code := runCLI(t, append(args, "--cache-dir", cache, "--retry-wait", "1ms", dir)...)
				if code != 0 {
					t.Fatalf("%v: exit %d\n%s", args, code, errOut)
				}
				printed.WriteString(out + errOut)
			}
			// LOCK as the file: the config is read from its directory.
			if _, errOut, code := runCLI(t, "prefetch", "--cache-dir", t.TempDir(), "--quiet", filepath.Join(dir, "Cargo.lock")); code != 0 {
				t.Errorf("prefetch DIR/Cargo.lock: exit %d\n%s", code, errOut)
			}
			if strings.Contains(printed.String(), token) {
				t.Errorf("stdout or stderr holds the token:\n%s", printed.String())
			}
			if !strings.Contains(printed.String(), "corp-lib@1.2.0") {
				t.Errorf("no progress lines naming the crates:\n%s", printed.String())
			}
			for _, d := range []string{tmp, dir} {
				grepTree(t, d, token)
			}
			if _, err := os.Stat(filepath.Join(outs, "vendor", ".cargo", "config.toml")); err != nil {
				t.Errorf("no vendor tree config to grep: %v", err)
			}
			if auths := reg.CDNAuthorizations(); len(auths) == 0 || strings.Join(auths, "") != "" {
				t.Errorf("the CDN saw %d requests with Authorization headers %q; want some, all without", len(auths), auths)
			}
			if reg.Authorized(reg.CratePath("corp-lib", "1.2.0")) == 0 {
				t.Errorf("downloads were not made with the token")
			}
		})
	}
}

// grepTree fails if a regular file under dir holds s. Unreadable files
// (another user's, in a shared TMPDIR) are skipped.
func grepTree(t *testing.T, dir, s string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(s)) {
			t.Errorf("%s holds the token", p)
		}
		return nil
	})
}
