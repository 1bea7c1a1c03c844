package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/internal/reftest"
)

// testPrivateNix builds the staging derivation of the drop-in for a project
// whose .cargo/config.toml names a private registry, passing its token
// through impureEnvVars: the static binary (%[1]s), the source (%[2]s),
// the drop-in (%[3]s).
const testPrivateNix = `{ hash }:
let
  cargohash = builtins.path { path = %[1]q; name = "cargohash-buildertest-bin"; };
  src = builtins.path { path = %[2]q; name = "cargohash-buildertest-private-src"; };
in
(import %[3]q { inherit cargohash; } {
  name = "cargohash-buildertest-private";
  inherit src hash;
  impureEnvVars = [ "CARGO_REGISTRIES_CORP_TOKEN" ];
}).vendorStaging
`

// TestNixBuilderPrivateRegistry runs the drop-in's fixed-output derivation
// against a private registry on 127.0.0.1 that wants a token for
// everything and redirects downloads to a CDN: the token reaches the
// builder only through impureEnvVars from nix-build's environment
// (single-user Nix), the hash Nix gets is `cargohash prefetch`'s, the CDN
// never sees the token, and neither the build log nor any store path
// holds it. Without the token, or with a wrong one, the build fails with
// cargohash's one-line error. Needs what TestNixBuilder needs.
func TestNixBuilderPrivateRegistry(t *testing.T) {
	nt := newNixTest(t)
	nixBuild, nix, feat, base, pkg := nt.nixBuild, nt.nix, nt.feat, nt.base, nt.pkg

	const token = "cio-NIX-SECRET-4d81"
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{Auth: fetchtest.AuthOptions{Token: token, Required: true, CDN: true}})
	a := reg.AddCrate("corp-lib", "1.2.0", map[string]string{"src/lib.rs": "pub fn corp() -> u32 { 7 }\n"})
	src := filepath.Join(base, "src")
	writeTree(t, src, map[string]string{
		"Cargo.lock":         string(fetchtest.Lock(a)),
		".cargo/config.toml": "[registries.corp]\nindex = \"sparse+" + reg.IndexURL() + "\"\n",
	})
	dropin, err := filepath.Abs("../../nix/fetch-cargo-vendor.nix")
	if err != nil {
		t.Fatal(err)
	}
	expr := filepath.Join(base, "private.nix")
	os.WriteFile(expr, []byte(fmt.Sprintf(testPrivateNix, pkg, src, dropin)), 0o644)

	// The oracle: prefetch with the token, outside Nix.
	t.Setenv("CARGO_HOME", t.TempDir())
	t.Setenv("CARGO_REGISTRIES_CORP_TOKEN", token)
	out, errOut, code := runCLI(t, "prefetch", "--no-cache", src)
	if code != 0 {
		t.Fatalf("prefetch: exit %d\n%s", code, errOut)
	}
	want := strings.TrimSpace(out)

	var logs bytes.Buffer
	build := func(hash, tok string, extra ...string) (string, string, error) {
		env := nixEnv()
		for i, kv := range env {
			if strings.HasPrefix(kv, "CARGO_REGISTRIES_CORP_TOKEN=") {
				env = append(env[:i:i], env[i+1:]...)
				break
			}
		}
		if tok != "" {
			env = append(env, "CARGO_REGISTRIES_CORP_TOKEN="+tok)
		}
		args := append([]string{expr, "--no-out-link", "--option", "substituters", "", "--option", "sandbox", "false",
			"--argstr", "hash", hash}, extra...)
		cmd := exec.Command(nixBuild, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		t.Logf("nix-build (token %v) %s: %v", tok != "", strings.Join(extra, " "), time.Since(start).Round(time.Millisecond))
		logs.WriteString(stderr.String())
		return strings.TrimSpace(stdout.String()), stderr.String(), err
	}

	// 1. No token, a wrong token: the builder fails with its one line.
	for _, tt := range []struct{ tok, status, says string }{
		{"", "401 Unauthorized", "no token in CARGO_REGISTRIES_CORP_TOKEN, /homeless-shelter/.cargo/credentials.toml"},
		{"wrong-" + token, "403 Forbidden", "the token from CARGO_REGISTRIES_CORP_TOKEN was refused"},
	} {
		_, errOut, err := build(fakeHash, tt.tok)
		if err == nil || !strings.Contains(errOut, `registry "corp"`) || !strings.Contains(errOut, tt.status) || !strings.Contains(errOut, tt.says) {
			t.Errorf("nix-build with token %q: %v; want a failure saying %s and %q\n%s", tt.tok, err, tt.status, tt.says, errOut)
		}
	}

	// 2. The token through impureEnvVars: Nix gets prefetch's hash.
	_, errOut, err = build(fakeHash, token)
	if m := gotLine.FindStringSubmatch(errOut); err == nil || m == nil || m[1] != want {
		t.Fatalf("nix-build with the fake hash: %v, want got: %s\n%s", err, want, errOut)
	}
	path, errOut, err := build(want, token)
	if err != nil {
		t.Fatalf("nix-build with hash %s: %v\n%s", want, err, errOut)
	}
	// --check runs the builder again (the output may have been kept from
	// the fake-hash build).
	if _, errOut, err := build(want, token, "--check"); err != nil {
		t.Errorf("nix-build --check: %v\n%s", err, errOut)
	}
	if got := strings.TrimSpace(string(reftest.Run(t, nix, append(feat, "hash", "path", path)...))); got != want {
		t.Errorf("nix hash path %s = %s, want %s", path, got, want)
	}
	checkStaging(t, path, filepath.Join(src, "Cargo.lock"), false)

	// 3. The registry saw the token, the CDN never did, and no log or
	// store path holds it.
	if reg.Authorized(reg.ConfigPath()) == 0 || reg.Authorized(reg.CratePath("corp-lib", "1.2.0")) == 0 {
		t.Errorf("the builder did not send the token (config.json %d, download %d)", reg.Authorized(reg.ConfigPath()), reg.Authorized(reg.CratePath("corp-lib", "1.2.0")))
	}
	if auths := reg.CDNAuthorizations(); len(auths) == 0 || strings.Join(auths, "") != "" {
		t.Errorf("the CDN saw %d requests with Authorization headers %q; want some, all without", len(auths), auths)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("a build log holds the token:\n%s", logs.String())
	}
	entries, _ := os.ReadDir("/nix/store")
	n := 0
	for _, e := range entries {
		if strings.Contains(e.Name(), "-cargohash-buildertest-private") {
			n++
			grepTree(t, filepath.Join("/nix/store", e.Name()), token)
		}
	}
	if n < 3 { // the source, the .drv, the output
		t.Errorf("found %d store paths of the test to grep, want at least 3", n)
	}
}
