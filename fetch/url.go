package fetch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/cargohash/cargohash/internal/redact"
	"github.com/cargohash/cargohash/lockfile"
)

// CratesIODL is the dl of crates.io: its static CDN, which needs no index
// request and does not rate-limit.
const CratesIODL = "https://static.crates.io/crates"

// CratesIOAlias is the key of Options.DL that stands for both crates.io
// source strings.
const CratesIOAlias = "crates-io"

// The markers of a dl template, as cargo knows them.
const (
	markerCrate       = "{crate}"
	markerVersion     = "{version}"
	markerPrefix      = "{prefix}"
	markerLowerPrefix = "{lowerprefix}"
	markerChecksum    = "{sha256-checksum}"
)

// maxConfigSize bounds a registry's config.json.
const maxConfigSize = 1 << 20

// DownloadURL expands the dl template of a registry for pkg, as cargo does:
// the markers {crate}, {version}, {prefix}, {lowerprefix} and
// {sha256-checksum} are replaced; if dl holds none of them,
// "/{crate}/{version}/download" is appended (without removing a trailing
// slash of dl, as cargo does not).
func DownloadURL(dl string, pkg lockfile.Package) string {
	prefix := Prefix(pkg.Name)
	markers := [...]struct{ marker, value string }{
		{markerCrate, pkg.Name},
		{markerVersion, pkg.Version},
		{markerPrefix, prefix},
		{markerLowerPrefix, strings.ToLower(prefix)},
		{markerChecksum, pkg.Checksum},
	}
	// One pass, not a strings.Replacer: building one per crate cost more
	// than the expansion (a 1.6 KiB table each, 232 of them on a cold
	// prefetch of 232 crates). No marker starts another.
	var b strings.Builder
	b.Grow(len(dl) + 64)
	found := false
	for rest := dl; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		rest = rest[i:]
		n := 1
		for _, m := range markers {
			if strings.HasPrefix(rest, m.marker) {
				b.WriteString(m.value)
				n, found = len(m.marker), true
				break
			}
		}
		if n == 1 {
			b.WriteByte('{')
		}
		rest = rest[n:]
	}
	if !found {
		return dl + "/" + pkg.Name + "/" + pkg.Version + "/download"
	}
	return b.String()
}

// Prefix is the index directory of a crate name: "1" and "2" for names of
// that length, "3/a" for a three-letter name starting with a, "ab/cd" for
// longer names starting with abcd. Case is kept; index paths and
// {lowerprefix} use its lower-case form.
func Prefix(name string) string {
	switch len(name) {
	case 0:
		return ""
	case 1:
		return "1"
	case 2:
		return "2"
	case 3:
		return "3/" + name[:1]
	default:
		return name[0:2] + "/" + name[2:4]
	}
}

// URL returns the download URL of a registry package: its registry's dl
// template (an override from Options.DL, crates.io's static CDN, or the dl
// of the registry's config.json, fetched once per registry and run) expanded
// for pkg. It may be an http(s):// or a file:// URL.
func (f *Fetcher) URL(ctx context.Context, pkg lockfile.Package) (string, error) {
	u, _, err := f.resolve(ctx, pkg)
	return u, err
}

// resolve returns the download URL of pkg and the credentials of its
// download (nil: none).
func (f *Fetcher) resolve(ctx context.Context, pkg lockfile.Package) (string, *authInfo, error) {
	dl, auth, err := f.dl(ctx, pkg.Source)
	if err != nil {
		return "", nil, &CrateError{Crate: pkg.ID(), Err: err}
	}
	return DownloadURL(dl, pkg), auth, nil
}

// dl returns the dl template of a source and the credentials its downloads
// need: netrc's for an override, the cargo token for a registry whose
// config.json says auth-required.
func (f *Fetcher) dl(ctx context.Context, src lockfile.Source) (string, *authInfo, error) {
	if dl, ok := f.opts.DL[src.Raw]; ok {
		return dl, f.mirrorAuth(dl), nil
	}
	if src.IsCratesIO() {
		if dl, ok := f.opts.DL[CratesIOAlias]; ok {
			return dl, f.mirrorAuth(dl), nil
		}
		return CratesIODL, nil, nil
	}
	if src.Kind != lockfile.Registry && src.Kind != lockfile.Sparse {
		return "", nil, fmt.Errorf("%w: %q is not a registry source", ErrSource, src.Raw)
	}
	cfg, err := f.configs.do(ctx, src.Raw, func(ctx context.Context) (registryConfig, error) {
		return f.readConfig(ctx, src)
	})
	if err != nil {
		return "", nil, err
	}
	auth := f.registryAuth(src)
	if !cfg.AuthRequired {
		// Only a 401 is then about credentials: a 403 may be a missing
		// file.
		auth.private = false
		if auth.cred != nil {
			auth.cred = nil
			auth.detail = "no token sent: the registry's config.json does not say auth-required"
		}
	}
	return cfg.DL, auth, nil
}

// registryConfig is the part of a registry's config.json we read.
type registryConfig struct {
	DL           string `json:"dl"`
	AuthRequired bool   `json:"auth-required"`
}

// readConfig reads a registry's config.json. A sparse registry's is
// requested with the registry's token when cargo's configuration has one
// (cargo first asks without and retries on 401; registries such as
// Artifactory answer 400, or count the 401s against the user).
func (f *Fetcher) readConfig(ctx context.Context, src lockfile.Source) (registryConfig, error) {
	var cfg registryConfig
	var data []byte
	var err error
	switch src.Kind {
	case lockfile.Sparse:
		index := src.URL
		if !strings.HasSuffix(index, "/") {
			index += "/"
		}
		auth := f.registryAuth(src)
		u := index + "config.json"
		data, err = f.readSmall(withCredential(ctx, auth.credential(), u), u)
		err = auth.check(err)
	case lockfile.Registry:
		if f.opts.GitReadFile == nil {
			return cfg, fmt.Errorf("%w: reading config.json of git index %s needs git support", ErrSource, redact.URL(src.URL))
		}
		if f.opts.Offline {
			return cfg, fmt.Errorf("reading config.json of %s: %w", redact.URL(src.URL), ErrOffline)
		}
		data, err = f.opts.GitReadFile(ctx, src.URL, "config.json")
	}
	if err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			return cfg, err // it names the registry
		}
		return cfg, fmt.Errorf("reading config.json of registry %s: %w", redact.URL(src.Raw), err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("config.json of registry %s: %w", redact.URL(src.Raw), err)
	}
	if cfg.DL == "" {
		return cfg, fmt.Errorf("config.json of registry %s: no \"dl\"", redact.URL(src.Raw))
	}
	return cfg, nil
}

// readSmall reads a small file (at most maxConfigSize bytes) from an http(s)
// or file URL.
func (f *Fetcher) readSmall(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSource, err)
	}
	switch u.Scheme {
	case "file":
		data, err := os.ReadFile(u.Path)
		if err != nil {
			return nil, &NetError{Op: "read", URL: redact.Parsed(u), Err: unwrapPathError(err)}
		}
		if len(data) > maxConfigSize {
			return nil, fmt.Errorf("%s: larger than %d bytes", redact.Parsed(u), maxConfigSize)
		}
		return data, nil
	case "http", "https":
		if f.opts.Offline {
			return nil, fmt.Errorf("GET %s: %w", redact.Parsed(u), ErrOffline)
		}
		var data []byte
		err := f.get(ctx, rawURL, func(resp *httpBody) error {
			var err error
			data, err = resp.readAll(maxConfigSize)
			return err
		})
		return data, err
	default:
		return nil, fmt.Errorf("%w: %s: scheme %q", ErrSource, redact.Parsed(u), u.Scheme)
	}
}
