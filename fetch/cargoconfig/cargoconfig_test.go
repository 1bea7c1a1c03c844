package cargoconfig

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// world is a project three directories deep, a CARGO_HOME and an
// environment.
func world(t *testing.T, files map[string]string, env ...string) (*Config, string) {
	root := t.TempDir()
	for name, body := range files {
		write(t, filepath.Join(root, name), body)
	}
	proj := filepath.Join(root, "a", "b", "proj")
	os.MkdirAll(proj, 0o755)
	c, err := Load(proj, append([]string{"CARGO_HOME=" + filepath.Join(root, "home"), "HOME=/nonexistent"}, env...))
	if err != nil {
		t.Fatal(err)
	}
	return c, root
}

func TestLookup(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		env    []string
		source string
		want   string // registry name, "" for none
		from   string // where its index was set (relative to the world's root, or an env var)
	}{
		{"home config", map[string]string{"home/config.toml": "[registries.corp]\nindex = \"sparse+https://corp.example/index/\"\n"},
			nil, "sparse+https://corp.example/index/", "corp", "home/config.toml"},
		{"legacy home config", map[string]string{"home/config": "[registries.corp]\nindex = \"sparse+https://corp.example/index/\"\n"},
			nil, "sparse+https://corp.example/index/", "corp", "home/config"},
		{"legacy wins over .toml in one directory", map[string]string{
			"a/.cargo/config":      "[registries.old]\nindex = \"sparse+https://corp.example/index/\"\n",
			"a/.cargo/config.toml": "[registries.new]\nindex = \"sparse+https://corp.example/index/\"\n"},
			nil, "sparse+https://corp.example/index/", "old", "a/.cargo/config"},
		{"deeper project file wins", map[string]string{
			"home/config.toml":           "[registries.corp]\nindex = \"sparse+https://home.example/\"\n",
			"a/.cargo/config.toml":       "[registries.corp]\nindex = \"sparse+https://upper.example/\"\n",
			"a/b/.cargo/config.toml":     "[registries.corp]\nindex = \"sparse+https://deeper.example/\"\n",
			"a/b/proj/Cargo.toml.unused": ""},
			nil, "sparse+https://deeper.example/", "corp", "a/b/.cargo/config.toml"},
		{"shadowed index no longer matches", map[string]string{
			"home/config.toml":       "[registries.corp]\nindex = \"sparse+https://home.example/\"\n",
			"a/b/.cargo/config.toml": "[registries.corp]\nindex = \"sparse+https://deeper.example/\"\n"},
			nil, "sparse+https://home.example/", "", ""},
		{"environment overrides files", map[string]string{"home/config.toml": "[registries.my-corp]\nindex = \"sparse+https://file.example/\"\n"},
			[]string{"CARGO_REGISTRIES_MY_CORP_INDEX=sparse+https://env.example/"}, "sparse+https://env.example/", "my-corp", "CARGO_REGISTRIES_MY_CORP_INDEX"},
		{"environment alone", nil,
			[]string{"CARGO_REGISTRIES_ENVREG_INDEX=sparse+https://env.example/idx/"}, "sparse+https://env.example/idx/", "envreg", "CARGO_REGISTRIES_ENVREG_INDEX"},
		{"trailing slash in config, none in lock", map[string]string{"home/config.toml": "[registries.corp]\nindex = \"sparse+https://corp.example/index/\"\n"},
			nil, "sparse+https://corp.example/index", "corp", "home/config.toml"},
		{"trailing slash in lock, none in config", map[string]string{"home/config.toml": "[registries.corp]\nindex = \"sparse+https://corp.example/index\"\n"},
			nil, "sparse+https://corp.example/index/", "corp", "home/config.toml"},
		{"host case and default port", map[string]string{"home/config.toml": "[registries.corp]\nindex = \"sparse+HTTPS://Corp.Example:443/index/\"\n"},
			nil, "sparse+https://corp.example/index/", "corp", "home/config.toml"},
		{"path case matters off github", map[string]string{"home/config.toml": "[registries.corp]\nindex = \"sparse+https://corp.example/Index/\"\n"},
			nil, "sparse+https://corp.example/index/", "", ""},
		{"git index with .git and github case", map[string]string{"home/config.toml": "[registries.gh]\nindex = \"https://github.com/Corp/Index.git\"\n"},
			nil, "registry+https://github.com/corp/index", "gh", "home/config.toml"},
		{"sparse config does not match a git source", map[string]string{"home/config.toml": "[registries.corp]\nindex = \"sparse+https://corp.example/index/\"\n"},
			nil, "registry+https://corp.example/index/", "", ""},
		{"git config does not match a sparse source", map[string]string{"home/config.toml": "[registries.corp]\nindex = \"https://corp.example/index/\"\n"},
			nil, "sparse+https://corp.example/index/", "", ""},
		{"other port", map[string]string{"home/config.toml": "[registries.corp]\nindex = \"sparse+https://corp.example:8443/index/\"\n"},
			nil, "sparse+https://corp.example/index/", "", ""},
		{"crates.io", nil, nil, "sparse+https://index.crates.io/", CratesIO, "cargo's default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, root := world(t, tt.files, tt.env...)
			r, ok := c.Lookup(tt.source)
			if tt.want == "" {
				if ok {
					t.Errorf("Lookup(%q) = %q, want none", tt.source, r.Name)
				}
				return
			}
			from := strings.TrimPrefix(r.From, root+"/")
			if !ok || r.Name != tt.want || from != tt.from {
				t.Errorf("Lookup(%q) = %q from %q (%v), want %q from %q", tt.source, r.Name, from, ok, tt.want, tt.from)
			}
		})
	}
}

func TestToken(t *testing.T) {
	const secret = "s3cr3t-token"
	tests := []struct {
		name     string
		files    map[string]string
		env      []string
		registry string
		from     string // "" no token
		looked   []string
	}{
		{"environment", nil, []string{"CARGO_REGISTRIES_MY_CORP_TOKEN=" + secret}, "my-corp",
			"CARGO_REGISTRIES_MY_CORP_TOKEN", []string{"CARGO_REGISTRIES_MY_CORP_TOKEN"}},
		{"environment before credentials", map[string]string{"home/credentials.toml": "[registries.corp]\ntoken = \"other\"\n"},
			[]string{"CARGO_REGISTRIES_CORP_TOKEN=" + secret}, "corp", "CARGO_REGISTRIES_CORP_TOKEN", []string{"CARGO_REGISTRIES_CORP_TOKEN"}},
		{"credentials.toml", map[string]string{"home/credentials.toml": "[registries.corp]\ntoken = \"" + secret + "\"\n"},
			nil, "corp", "home/credentials.toml", []string{"CARGO_REGISTRIES_CORP_TOKEN", "home/credentials.toml"}},
		{"legacy credentials", map[string]string{"home/credentials": "[registries.corp]\ntoken = \"" + secret + "\"\n"},
			nil, "corp", "home/credentials", []string{"CARGO_REGISTRIES_CORP_TOKEN", "home/credentials"}},
		{"legacy credentials win", map[string]string{
			"home/credentials":      "[registries.corp]\ntoken = \"" + secret + "\"\n",
			"home/credentials.toml": "[registries.corp]\ntoken = \"other\"\n"},
			nil, "corp", "home/credentials", []string{"CARGO_REGISTRIES_CORP_TOKEN", "home/credentials"}},
		{"name from the environment, token from the file", map[string]string{"home/credentials.toml": "[registries.my-corp]\ntoken = \"" + secret + "\"\n"},
			nil, "my_corp", "home/credentials.toml", []string{"CARGO_REGISTRIES_MY_CORP_TOKEN", "home/credentials.toml"}},
		{"crates.io from the environment", nil, []string{"CARGO_REGISTRY_TOKEN=" + secret}, CratesIO,
			"CARGO_REGISTRY_TOKEN", []string{"CARGO_REGISTRY_TOKEN"}},
		{"crates.io from [registry]", map[string]string{"home/credentials.toml": "[registry]\ntoken = \"" + secret + "\"\n"},
			nil, CratesIO, "home/credentials.toml", []string{"CARGO_REGISTRY_TOKEN", "home/credentials.toml"}},
		{"none", map[string]string{"home/credentials.toml": "[registries.other]\ntoken = \"x\"\n"},
			nil, "corp", "", []string{"CARGO_REGISTRIES_CORP_TOKEN", "home/credentials.toml"}},
		{"no file", nil, nil, "corp", "", []string{"CARGO_REGISTRIES_CORP_TOKEN", "home/credentials.toml"}},
		{"a token in config.toml is not read", map[string]string{"home/config.toml": "[registries.corp]\nindex = \"sparse+https://x/\"\ntoken = \"" + secret + "\"\n"},
			nil, "corp", "", []string{"CARGO_REGISTRIES_CORP_TOKEN", "home/credentials.toml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, root := world(t, tt.files, tt.env...)
			tok, from, looked := c.Token(tt.registry)
			from = strings.TrimPrefix(from, root+"/")
			for i := range looked {
				looked[i] = strings.TrimPrefix(looked[i], root+"/")
			}
			if from != tt.from || strings.Join(looked, ",") != strings.Join(tt.looked, ",") {
				t.Errorf("Token(%q) from %q looked %q, want from %q looked %q", tt.registry, from, looked, tt.from, tt.looked)
			}
			if tt.from != "" && tok.Value() != secret {
				t.Errorf("Token(%q) has the wrong value", tt.registry)
			}
			if tt.from == "" && !tok.IsZero() {
				t.Errorf("Token(%q): a token where none is configured", tt.registry)
			}
		})
	}
}

// TestTokenNeverPrints: every way of formatting a Token hides its value.
func TestTokenNeverPrints(t *testing.T) {
	tok := Token{"s3cr3t"}
	j, _ := json.Marshal(struct{ T Token }{tok})
	for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s %q", tok, tok, tok, tok, tok), string(j)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("token printed: %s", s)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "p", ".cargo", "config.toml"), "[registries.corp]\nindex = \"sparse+https://x/\"\n[registries\n")
	_, err := Load(filepath.Join(root, "p"), []string{"CARGO_HOME=" + filepath.Join(root, "home")})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "p", ".cargo", "config.toml")+":3") {
		t.Errorf("malformed config: %v, want an error naming the file and line 3", err)
	}
	write(t, filepath.Join(root, "home", "credentials.toml"), "[registries.corp]\ntoken = 5\n")
	_, err = Load(filepath.Join(root, "q"), []string{"CARGO_HOME=" + filepath.Join(root, "home")})
	if err == nil || !strings.Contains(err.Error(), "credentials.toml") {
		t.Errorf("malformed credentials: %v, want an error naming the file", err)
	}
}
