package fetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/fetch/cargoconfig"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

const testToken = "cio-SECRET-7f3a9c"

// TestRegistryToken fetches from a private sparse registry whose token
// comes from each of cargo's places, or is missing or wrong.
func TestRegistryToken(t *testing.T) {
	tests := []struct {
		name     string
		env      []string          // besides CARGO_HOME
		files    map[string]string // under CARGO_HOME
		required bool              // config.json says auth-required
		cdn      bool
		err      string // "" success; else the error's text after "NAME@VERSION: ", {reg}/{home} replaced
		status   int
	}{
		{name: "environment", env: []string{"CARGO_REGISTRIES_CORP_REG_TOKEN=" + testToken}, required: true},
		{name: "credentials.toml", files: map[string]string{"credentials.toml": "[registries.corp-reg]\ntoken = \"" + testToken + "\"\n"}, required: true},
		{name: "legacy credentials", files: map[string]string{"credentials": "[registries.corp-reg]\ntoken = \"" + testToken + "\"\n"}, required: true},
		{name: "redirect to a CDN", env: []string{"CARGO_REGISTRIES_CORP_REG_TOKEN=" + testToken}, required: true, cdn: true},
		{name: "wrong token", env: []string{"CARGO_REGISTRIES_CORP_REG_TOKEN=wrong-" + testToken}, required: true, status: 403,
			err: `registry "corp-reg" (sparse+{reg}/index/): GET {reg}/index/config.json: 403 Forbidden (the token from CARGO_REGISTRIES_CORP_REG_TOKEN was refused)`},
		{name: "no token", required: true, status: 401,
			err: `registry "corp-reg" (sparse+{reg}/index/): GET {reg}/index/config.json: 401 Unauthorized (no token in CARGO_REGISTRIES_CORP_REG_TOKEN, {home}/credentials.toml)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{Auth: fetchtest.AuthOptions{Token: testToken, Required: tt.required, CDN: tt.cdn}})
			data := fetchtest.Crate("private", "1.0.0", map[string]string{"src/lib.rs": "pub fn f() {}\n"})
			pkg := reg.Add("private", "1.0.0", data)
			home := t.TempDir()
			for name, body := range tt.files {
				os.WriteFile(filepath.Join(home, name), []byte(body), 0o600)
			}
			project := t.TempDir()
			os.MkdirAll(filepath.Join(project, ".cargo"), 0o755)
			os.WriteFile(filepath.Join(project, ".cargo", "config.toml"), []byte("[registries.corp-reg]\nindex = \"sparse+"+reg.URL+"/index\"\n"), 0o644)
			cfg, err := cargoconfig.Load(project, append([]string{"CARGO_HOME=" + home}, tt.env...))
			if err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			cache := t.TempDir()
			f := newTestFetcher(t, Options{CacheDir: cache, Registries: cfg, Log: &log})
			path, err := f.Crate(context.Background(), pkg)
			if strings.Contains(log.String(), testToken) {
				t.Errorf("the log holds the token:\n%s", log.String())
			}
			if tt.err != "" {
				want := "private@1.0.0: " + strings.NewReplacer("{reg}", reg.URL, "{home}", home).Replace(tt.err)
				var ae *AuthError
				if err == nil || err.Error() != want || !errors.As(err, &ae) || ae.StatusCode != tt.status || !errors.Is(err, ErrFetch) {
					t.Fatalf("err = %v\nwant  %s", err, want)
				}
				if strings.Contains(err.Error(), testToken) || strings.Contains(fmt.Sprintf("%#v", ae), testToken) {
					t.Errorf("the error holds the token: %#v", ae)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkFile(t, path, data)
			if n := reg.Authorized(reg.ConfigPath()); n != 1 {
				t.Errorf("config.json fetched with the token %d times, want 1", n)
			}
			if tt.cdn {
				auths := reg.CDNAuthorizations()
				if len(auths) != 1 || auths[0] != "" {
					t.Errorf("the CDN saw Authorization headers %q, want one request without", auths)
				}
			} else if n := reg.Authorized(reg.CratePath("private", "1.0.0")); n != 1 {
				t.Errorf("download made with the token %d times, want 1", n)
			}
			assertNoToken(t, cache, testToken)
		})
	}
}

// TestTokenOnlyWhenRequired: without auth-required the token goes to
// config.json only; a registry that then answers 401 gets an AuthError
// saying why no token was sent.
func TestTokenOnlyWhenRequired(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{Auth: fetchtest.AuthOptions{Token: testToken}})
	pkg := reg.Add("private", "1.0.0", fetchtest.Crate("private", "1.0.0", nil))
	cfg, err := cargoconfig.Load("", []string{"CARGO_HOME=" + t.TempDir(), "CARGO_REGISTRIES_CORP_INDEX=sparse+" + reg.IndexURL(), "CARGO_REGISTRIES_CORP_TOKEN=" + testToken})
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFetcher(t, Options{Registries: cfg})
	_, err = f.Crate(context.Background(), pkg)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.StatusCode != 401 || !strings.Contains(err.Error(), "does not say auth-required") {
		t.Fatalf("err = %v, want a 401 AuthError saying config.json does not require auth", err)
	}
	if n := reg.Authorized(reg.ConfigPath()); n != 1 {
		t.Errorf("config.json fetched with the token %d times, want 1", n)
	}
	if n := reg.Requests(reg.CratePath("private", "1.0.0")); n != 1 || reg.Authorized(reg.CratePath("private", "1.0.0")) != 0 {
		t.Errorf("download: %d requests, %d with the token; want 1 without", n, reg.Authorized(reg.CratePath("private", "1.0.0")))
	}
}

// TestUnknownRegistry: a 401 from a registry that cargo's configuration
// does not name says where registry names were looked for.
func TestUnknownRegistry(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{Auth: fetchtest.AuthOptions{Token: testToken, Required: true}})
	pkg := reg.Add("private", "1.0.0", fetchtest.Crate("private", "1.0.0", nil))
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("[registries.other]\nindex = \"sparse+https://other.example/\"\n"), 0o644)
	cfg, err := cargoconfig.Load("", []string{"CARGO_HOME=" + home, "CARGO_REGISTRY_TOKEN=" + testToken})
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFetcher(t, Options{Registries: cfg})
	_, err = f.Crate(context.Background(), pkg)
	want := fmt.Sprintf("private@1.0.0: registry sparse+%s: GET %sconfig.json: 401 Unauthorized (no token: no [registries.NAME] index in %s/config.toml or CARGO_REGISTRIES_NAME_INDEX is this registry's)", reg.IndexURL(), reg.IndexURL(), home)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	if n := reg.Authorized(reg.ConfigPath()); n != 0 {
		t.Errorf("crates.io's token was sent to another registry")
	}
}

// TestNetrcMirror: a --registry-dl mirror gets Basic credentials for its
// host from the netrc file (machine, else default), and never a cargo
// token.
func TestNetrcMirror(t *testing.T) {
	const user, pass = "ci-bot", "netrc-PASS-51d2"
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	tests := []struct {
		name   string
		netrc  string // "" no file
		err    string
		status int
	}{
		{name: "machine", netrc: "machine other.example login x password y\nmachine 127.0.0.1\n  login " + user + "\n  password " + pass + "\n"},
		{name: "default", netrc: "machine other.example login x password y\ndefault login " + user + " password " + pass + "\n"},
		{name: "quoted, after a macro", netrc: "macdef init\ncd /\nmachine 127.0.0.1 login evil password evil\n\nmachine 127.0.0.1 login \"" + user + "\" password \"" + pass + "\"\n"},
		{name: "wrong password", netrc: "machine 127.0.0.1 login " + user + " password not-" + pass + "\n", status: 403,
			err: "mirror {dl}: GET {url}: 403 Forbidden (the credentials for 127.0.0.1 in {netrc} were refused)"},
		{name: "no machine", netrc: "machine other.example login " + user + " password " + pass + "\n", status: 401,
			err: "mirror {dl}: GET {url}: 401 Unauthorized (no credentials: no machine 127.0.0.1 or default in {netrc})"},
		{name: "no file", status: 401,
			err: "mirror {dl}: GET {url}: 401 Unauthorized (no credentials: no machine 127.0.0.1 or default in {netrc})"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mirror := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{Auth: fetchtest.AuthOptions{Token: basic}})
			data := fetchtest.Crate("serde", "1.0.0", nil)
			mirror.Add("serde", "1.0.0", data)
			pkg := fetchtest.CratesIO("serde", "1.0.0", data)
			netrc := filepath.Join(t.TempDir(), "netrc")
			if tt.netrc != "" {
				os.WriteFile(netrc, []byte(tt.netrc), 0o600)
			}
			t.Setenv("NETRC", netrc)
			cfg, _ := cargoconfig.Load("", []string{"CARGO_HOME=" + t.TempDir(), "CARGO_REGISTRY_TOKEN=" + testToken})
			var log bytes.Buffer
			f := newTestFetcher(t, Options{DL: map[string]string{CratesIOAlias: mirror.DL()}, Registries: cfg, Log: &log})
			_, err := f.Crate(context.Background(), pkg)
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if n := mirror.Authorized(mirror.CratePath("serde", "1.0.0")); n != 1 {
					t.Errorf("%d downloads with the netrc credentials, want 1", n)
				}
				return
			}
			want := "serde@1.0.0: " + strings.NewReplacer("{dl}", mirror.DL(), "{url}", mirror.CrateURL("serde", "1.0.0"), "{netrc}", netrc).Replace(tt.err)
			var ae *AuthError
			if err == nil || err.Error() != want || !errors.As(err, &ae) || ae.StatusCode != tt.status {
				t.Fatalf("err = %v\nwant  %s", err, want)
			}
			for _, s := range []string{pass, basic, testToken} {
				if strings.Contains(err.Error()+log.String(), s) {
					t.Errorf("error or log holds a secret: %v\n%s", err, log.String())
				}
			}
		})
	}
}

func TestParseNetrc(t *testing.T) {
	got := parseNetrc("# comment\nmachine a.example login la password pa account x\nmacdef m\nmachine evil login e password e\n\ndefault\nlogin ld\npassword \"p d\\\"q\"\n")
	want := []netrcEntry{{"a.example", "la", "pa"}, {"", "ld", `p d"q`}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseNetrc = %q, want %q", got, want)
	}
	if e, ok := netrcLookup(got, "A.EXAMPLE"); !ok || e.login != "la" {
		t.Errorf("lookup a.example: %v %v", e, ok)
	}
	if e, ok := netrcLookup(got, "b.example"); !ok || e.login != "ld" {
		t.Errorf("lookup b.example: %v %v (want the default)", e, ok)
	}
}

// TestOrigin: a credential's scope is scheme, host and port.
func TestOrigin(t *testing.T) {
	tests := []struct{ a, b string }{
		{"https://Reg.Example/index/config.json", "https://reg.example:443/x"},
		{"http://127.0.0.1/a", "http://127.0.0.1:80/b"},
	}
	for _, tt := range tests {
		if o := origin(mustParse(t, tt.a)); o != origin(mustParse(t, tt.b)) {
			t.Errorf("origin(%s) = %s, differs from %s's", tt.a, o, tt.b)
		}
	}
	differ := []struct{ a, b string }{
		{"https://reg.example/", "http://reg.example/"},
		{"https://reg.example/", "https://reg.example:8443/"},
		{"https://reg.example/", "https://cdn.reg.example/"},
		{"http://127.0.0.1:1000/", "http://127.0.0.1:1001/"},
	}
	for _, tt := range differ {
		if origin(mustParse(t, tt.a)) == origin(mustParse(t, tt.b)) {
			t.Errorf("%s and %s have the same origin", tt.a, tt.b)
		}
	}
}

// assertNoToken fails if any file under dir holds token.
func assertNoToken(t *testing.T, dir, token string) {
	t.Helper()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(token)) {
			t.Errorf("%s holds the token", p)
		}
		return nil
	})
}

func mustParse(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestGitIndexToken: a private registry with a git index (its config.json
// read by Options.GitReadFile, as fetch/git does) gets its token on
// downloads when config.json says auth-required; the index URL matches
// the configuration's despite a ".git" suffix and a trailing slash.
func TestGitIndexToken(t *testing.T) {
	reg := fetchtest.NewRegistry(t, fetchtest.RegistryOptions{Auth: fetchtest.AuthOptions{Token: testToken}})
	data := fetchtest.Crate("private", "1.0.0", nil)
	pkg := reg.Add("private", "1.0.0", data)
	pkg.Source = lockfile.Source{Raw: "registry+https://git.corp.example/index", Kind: lockfile.Registry, URL: "https://git.corp.example/index"}
	home := t.TempDir()
	os.WriteFile(filepath.Join(home, "config.toml"), []byte("[registries.corp]\nindex = \"https://git.corp.example/index.git/\"\n"), 0o644)
	os.WriteFile(filepath.Join(home, "credentials.toml"), []byte("[registries.corp]\ntoken = \""+testToken+"\"\n"), 0o600)
	cfg, err := cargoconfig.Load("", []string{"CARGO_HOME=" + home})
	if err != nil {
		t.Fatal(err)
	}
	readFile := func(_ context.Context, url, path string) ([]byte, error) {
		if url != pkg.Source.URL || path != "config.json" {
			return nil, fmt.Errorf("unexpected read of %s in %s", path, url)
		}
		return []byte(`{"dl": "` + reg.DL() + `", "auth-required": true}`), nil
	}
	f := newTestFetcher(t, Options{Registries: cfg, GitReadFile: readFile})
	path, err := f.Crate(context.Background(), pkg)
	if err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, data)
	if n := reg.Authorized(reg.CratePath("private", "1.0.0")); n != 1 {
		t.Errorf("%d downloads with the token, want 1", n)
	}
}
