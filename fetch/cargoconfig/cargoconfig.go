// Package cargoconfig reads what cargo's configuration says about
// registries: their names and index URLs, and the token cargo's default
// credential provider (cargo:token) would send to each.
//
// Registry names and index URLs come from `[registries.NAME] index = …` in
// the .cargo/config.toml files of a directory and every parent (a deeper
// file takes precedence), then $CARGO_HOME/config.toml (lowest), and from
// CARGO_REGISTRIES_<NAME>_INDEX (highest; NAME upper-cased, "-" as "_").
// In each directory the legacy name without ".toml" wins when both exist,
// as in cargo. Tokens come from CARGO_REGISTRIES_<NAME>_TOKEN, then
// `[registries.NAME] token` in $CARGO_HOME/credentials.toml (or the legacy
// credentials); crates.io's from CARGO_REGISTRY_TOKEN, then `[registry]
// token`.
//
// The package does not run other credential providers (cargo:libsecret,
// credential-process), read source replacement, or interpret any other
// configuration key. A Token never prints its value.
package cargoconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// CratesIO is the name cargo gives crates.io.
const CratesIO = "crates-io"

// Config is the registries part of cargo's configuration.
type Config struct {
	registries []Registry
	env        map[string]string
	configs    []string // config files read, deepest first
	credFile   string   // the credentials file read, or where it would be
	creds      credentials
}

// Registry is a registry cargo's configuration names.
type Registry struct {
	Name  string // as written in the config ("crates-io" for crates.io)
	Index string // the index URL as configured ("sparse+https://…" for sparse)
	From  string // the file or environment variable that set Index
	key   string // canonical form of Index, for matching
}

// Token is a registry token. It prints as "REDACTED"; Value gives the
// secret itself, to put in a request and nowhere else.
type Token struct{ v string }

// Value is the token itself.
func (t Token) Value() string { return t.v }

// IsZero reports whether there is no token.
func (t Token) IsZero() bool { return t.v == "" }

func (t Token) String() string {
	if t.v == "" {
		return ""
	}
	return "REDACTED"
}

// GoString keeps %#v from printing the value.
func (t Token) GoString() string { return "cargoconfig.Token{" + t.String() + "}" }

// MarshalText keeps encoders from writing the value.
func (t Token) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// file is the part of a config or credentials file read.
type file struct {
	Registries map[string]struct {
		Index *string `toml:"index"`
		Token *string `toml:"token"`
	} `toml:"registries"`
	Registry struct {
		Token *string `toml:"token"`
	} `toml:"registry"`
}

// credentials are the tokens of a credentials file, by environment key of
// the registry name ("" for crates.io's [registry] token).
type credentials map[string]string

// Load reads the configuration cargo would read when run in dir, with the
// environment environ (os.Environ's form). CARGO_HOME, else HOME/.cargo, is
// the home; a missing file is no error, a malformed one is.
func Load(dir string, environ []string) (*Config, error) {
	c := &Config{env: map[string]string{}}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			c.env[k] = v
		}
	}
	home := c.env["CARGO_HOME"]
	if home == "" {
		if h := c.env["HOME"]; filepath.IsAbs(h) {
			home = filepath.Join(h, ".cargo")
		}
	}
	if home != "" {
		home, _ = filepath.Abs(home)
	}

	// Deepest first; $CARGO_HOME's last unless the walk passed it.
	var dirs []string
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		for d := abs; ; d = filepath.Dir(d) {
			dirs = append(dirs, filepath.Join(d, ".cargo"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if home != "" && !contains(dirs, home) {
		dirs = append(dirs, home)
	}
	byName := map[string]int{} // name → index in c.registries
	for _, d := range dirs {
		path, ok := pick(d, "config")
		if !ok {
			continue
		}
		f, err := readFile(path)
		if err != nil {
			return nil, err
		}
		c.configs = append(c.configs, path)
		for name, r := range f.Registries {
			if r.Index == nil {
				continue
			}
			if _, seen := byName[name]; seen {
				continue // a deeper file said it first
			}
			byName[name] = len(c.registries)
			c.registries = append(c.registries, Registry{Name: name, Index: *r.Index, From: path})
		}
	}
	// The environment overrides files, and may name registries of its own.
	for k, v := range c.env {
		mid, ok := strings.CutPrefix(k, "CARGO_REGISTRIES_")
		if !ok {
			continue
		}
		mid, ok = strings.CutSuffix(mid, "_INDEX")
		if !ok || mid == "" || v == "" {
			continue
		}
		found := false
		for i := range c.registries {
			if EnvKey(c.registries[i].Name) == mid {
				c.registries[i].Index, c.registries[i].From = v, k
				found = true
			}
		}
		if !found {
			c.registries = append(c.registries, Registry{Name: strings.ToLower(mid), Index: v, From: k})
		}
	}
	for i := range c.registries {
		c.registries[i].key = canonical(c.registries[i].Index)
	}

	c.creds = credentials{}
	if home != "" {
		path, ok := pick(home, "credentials")
		if !ok {
			path = filepath.Join(home, "credentials.toml")
		}
		c.credFile = path
		if ok {
			f, err := readFile(path)
			if err != nil {
				return nil, err
			}
			for name, r := range f.Registries {
				if r.Token != nil && *r.Token != "" {
					c.creds[EnvKey(name)] = *r.Token
				}
			}
			if t := f.Registry.Token; t != nil && *t != "" {
				c.creds[""] = *t
			}
		}
	}
	return c, nil
}

// Files lists the config files read, deepest first.
func (c *Config) Files() []string { return append([]string(nil), c.configs...) }

// Registries lists the registries the configuration names.
func (c *Config) Registries() []Registry { return append([]Registry(nil), c.registries...) }

// Lookup finds the registry of a Cargo.lock source string
// ("sparse+URL" or "registry+URL"), matching index URLs as cargo compares
// sources: the same protocol (sparse or git) and the same URL once a
// trailing slash, a ".git" suffix, the case of scheme and host (and of the
// path on github.com) and a default port are set aside. crates.io's
// sources are the registry "crates-io".
func (c *Config) Lookup(source string) (Registry, bool) {
	if source == "registry+https://github.com/rust-lang/crates.io-index" || source == "sparse+https://index.crates.io/" {
		return Registry{Name: CratesIO, Index: strings.TrimPrefix(source, "registry+"), From: "cargo's default"}, true
	}
	key := canonical(source)
	for _, r := range c.registries {
		if r.key == key {
			return r, true
		}
	}
	return Registry{}, false
}

// Token returns the token cargo:token finds for the registry called name,
// where it came from, and every place it looked, in order.
func (c *Config) Token(name string) (tok Token, from string, looked []string) {
	env := "CARGO_REGISTRIES_" + EnvKey(name) + "_TOKEN"
	credKey := EnvKey(name)
	if name == CratesIO {
		env, credKey = "CARGO_REGISTRY_TOKEN", ""
	}
	looked = []string{env}
	if v := c.env[env]; v != "" {
		return Token{v}, env, looked
	}
	if c.credFile != "" {
		looked = append(looked, c.credFile)
		if v := c.creds[credKey]; v != "" {
			return Token{v}, c.credFile, looked
		}
	}
	return Token{}, "", looked
}

// EnvKey is the part of an environment variable that stands for a registry
// name: upper case, "-" as "_" (CARGO_REGISTRIES_<EnvKey>_TOKEN).
func EnvKey(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// canonical is the form in which cargo compares registry sources: "sparse "
// or "git " and the URL with scheme and host lower-cased, a default port
// dropped, one trailing slash and a ".git" suffix removed, and github.com
// paths lower-cased (cargo's CanonicalUrl). An index in the configuration
// is git unless it starts with "sparse+"; a lock source says which.
func canonical(index string) string {
	kind := "git "
	if rest, ok := strings.CutPrefix(index, "sparse+"); ok {
		kind, index = "sparse ", rest
	} else {
		index = strings.TrimPrefix(index, "registry+")
	}
	u, err := url.Parse(index)
	if err != nil || u.Scheme == "" {
		return kind + index
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	if p := u.Port(); (p == "443" && u.Scheme == "https") || (p == "80" && u.Scheme == "http") {
		u.Host = u.Hostname()
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	if u.Host == "github.com" {
		u.Scheme = "https"
		u.Path = strings.ToLower(u.Path)
	}
	u.Path = strings.TrimSuffix(u.Path, ".git")
	return kind + u.String()
}

// pick returns dir/name, or dir/name.toml when the legacy file does not
// exist (cargo reads only one; the legacy name wins).
func pick(dir, name string) (string, bool) {
	for _, p := range []string{filepath.Join(dir, name), filepath.Join(dir, name+".toml")} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, true
		}
	}
	return "", false
}

func readFile(path string) (*file, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var f file
	if err := toml.Unmarshal(data, &f); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, fmt.Errorf("%s:%d: %s", path, row, de.Error())
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
