package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/lockfile"
)

// fetchFlags are the flags of every command that fetches (SPEC §1).
func fetchFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "registry-dl", Usage: "download the crates of SOURCE (a Cargo.lock source string, or crates-io) from the dl template DL, an http(s):// or file:// URL: `SOURCE=DL`"},
		&cli.IntFlag{Name: "jobs", Value: fetch.DefaultJobs, Usage: "`N` concurrent downloads"},
		&cli.StringFlag{Name: "cache-dir", Usage: "the download cache `DIR` (default: $XDG_CACHE_HOME/cargohash or ~/.cache/cargohash; none without a HOME)"},
		&cli.BoolFlag{Name: "no-cache", Usage: "neither read nor write the download cache"},
		&cli.BoolFlag{Name: "offline", Usage: "use only the cache, CARGO_HOME and file:// mirrors"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress on stderr"},
		&cli.IntFlag{Name: "retries", Value: fetch.DefaultRetries, Usage: "retry a failed download (connection errors, 5xx, 429) `N` times"},
		&cli.DurationFlag{Name: "retry-wait", Value: fetch.DefaultRetryWaitMin, Usage: "wait `DURATION` before the first retry, twice as long before each next one"},
	}
}

// openSession builds a Session from the fetch flags; p shows its progress.
func openSession(c *cli.Context, p *progress) (*cargohash.Session, error) {
	dl := map[string]string{}
	for _, kv := range c.StringSlice("registry-dl") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || v == "" {
			return nil, usagef("--registry-dl %q: want SOURCE=DL", kv)
		}
		if !strings.Contains(v, "://") {
			abs, _ := filepath.Abs(v)
			return nil, usagef("--registry-dl %s: %s is not a URL; a local mirror is file://%s", kv, v, filepath.ToSlash(abs))
		}
		dl[k] = v
	}
	if c.Int("retries") < 0 {
		return nil, usagef("--retries must not be negative")
	}
	if c.Int("jobs") < 1 {
		return nil, usagef("--jobs must be at least 1")
	}
	if c.IsSet("cache-dir") && c.Bool("no-cache") {
		return nil, usagef("--cache-dir and --no-cache: give one or the other")
	}
	cacheDir := c.String("cache-dir")
	if cacheDir == "" {
		cacheDir = fetch.DefaultCacheDir()
	}
	if c.Bool("no-cache") {
		cacheDir = ""
	}
	retries := c.Int("retries")
	if retries == 0 {
		retries = -1 // fetch.Options: 0 is the default, negative none
	}
	wait := max(c.Duration("retry-wait"), time.Millisecond)
	registries, err := cargoRegistries(c)
	if err != nil {
		return nil, err
	}
	opts := cargohash.Options{
		Fetch: fetch.Options{
			Jobs:         c.Int("jobs"),
			CacheDir:     cacheDir,
			NoCache:      cacheDir == "",
			Offline:      c.Bool("offline"),
			DL:           dl,
			Registries:   registries,
			Progress:     p.event,
			Log:          p.fetchLog(),
			Retries:      retries,
			RetryWaitMin: wait,
			RetryWaitMax: wait * (fetch.DefaultRetryWaitMax / fetch.DefaultRetryWaitMin), // the default ratio
		},
		GitJobs:  gitJobs(os.Getenv),
		Log:      p.log(),
		Progress: p.sessionEvent,
	}
	if cacheDir != "" {
		opts.GitCacheDir = filepath.Join(cacheDir, "git")
	}
	return cargohash.Open(opts)
}

// withSession runs fn with a session built from the fetch flags, then
// closes it and ends the progress display; phase says what fn does once
// everything is fetched ("hashing", …).
func withSession(c *cli.Context, phase string, fn func(*cargohash.Session) error) error {
	return withProgress(c, newProgress(c.App.ErrWriter, phase, c.Bool("quiet")), fn)
}

// withProgress is withSession with the progress display given.
func withProgress(c *cli.Context, p *progress, fn func(*cargohash.Session) error) error {
	s, err := openSession(c, p)
	if err != nil {
		return err
	}
	defer func() {
		// Close puts this run's downloads in the cache: a failure there
		// costs the next run, not this one's result.
		if cerr := s.Close(); cerr != nil {
			fmt.Fprintf(c.App.ErrWriter, "cargohash: warning: %v\n", cerr)
		}
	}()
	err = fn(s)
	p.finish(err == nil)
	return err
}

// lockArg loads the LOCK argument: a Cargo.lock, or the nearest one from
// a directory (default ".") upwards, which stderr names when it is not in
// that directory.
func lockArg(c *cli.Context) (*lockfile.File, error) {
	if c.NArg() > 1 {
		return nil, usagef("%s: want at most one LOCK argument, got %d", c.Command.Name, c.NArg())
	}
	return findLock(c, c.Args().First())
}

// findLock loads the Cargo.lock dir is or, for a directory ("" is "."),
// the nearest one from it upwards, which stderr names when it is not in
// dir.
func findLock(c *cli.Context, dir string) (*lockfile.File, error) {
	if dir == "" {
		dir = "."
	}
	path, err := cargohash.FindLock(dir)
	if err != nil {
		return nil, err
	}
	if path != dir && filepath.Dir(path) != filepath.Clean(dir) {
		fmt.Fprintf(c.App.ErrWriter, "cargohash: using %s\n", path)
	}
	return lockfile.Load(path)
}

// projectName names the project of a lock after its directory.
func projectName(lock *lockfile.File) string {
	abs, err := filepath.Abs(lock.Path)
	if err != nil {
		return "source"
	}
	return filepath.Base(filepath.Dir(abs))
}

func prefetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "prefetch",
		Usage:     "print the fetchCargoVendor cargoHash of a Cargo.lock",
		ArgsUsage: "[LOCK]",
		Flags: append(fetchFlags(),
			&cli.BoolFlag{Name: "json", Usage: "print cargoHash, outputHashes and counts as JSON"},
			&cli.StringFlag{Name: "expect", Usage: "compare with `HASH`; on mismatch print Nix's report and exit 1"},
			&cli.StringFlag{Name: "name", Usage: "the derivation `NAME` in the mismatch report (default: the lock's directory name)"},
		),
		Action: func(c *cli.Context) error {
			lock, err := lockArg(c)
			if err != nil {
				return err
			}
			var expect nixhash.Hash
			if c.IsSet("expect") {
				if expect, _, err = nixhash.ParseExpected(c.String("expect"), nixhash.SHA256); err != nil {
					return usageError{err.Error()}
				}
			}
			var res *cargohash.Result
			if err := withSession(c, "hashing", func(s *cargohash.Session) (err error) {
				res, err = s.Prefetch(c.Context, lock)
				return err
			}); err != nil {
				return err
			}
			if c.Bool("json") {
				if err := writeJSON(c.App.Writer, res); err != nil {
					return err
				}
			} else if _, err := fmt.Fprintln(c.App.Writer, res.CargoHash); err != nil {
				return err
			}
			if c.IsSet("expect") {
				return expectHash(c, expect, res.CargoHash, c.String("name"), lock)
			}
			return nil
		},
	}
}

// expectHash prints Nix's mismatch report when got is not want.
func expectHash(c *cli.Context, want, got nixhash.Hash, name string, lock *lockfile.File) error {
	if want.Equal(got) {
		return nil
	}
	if name == "" {
		name = projectName(lock)
	}
	fmt.Fprint(c.App.ErrWriter, nixhash.MismatchReport(name+"-vendor-staging", want, got))
	return fmt.Errorf("%w: %w", errReported, cargohash.ErrMismatch)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func stagingCommand() *cli.Command {
	return &cli.Command{
		Name:      "staging",
		Usage:     "write the fetchCargoVendor vendor-staging tree of a Cargo.lock",
		ArgsUsage: "[LOCK]",
		Flags: append(fetchFlags(),
			&cli.StringFlag{Name: "out", Usage: "the `DIR` to create (default: $out, as in a Nix builder; an existing one is replaced only if empty or an unchanged earlier staging tree)"},
		),
		Action: func(c *cli.Context) error {
			out := outFlag(c)
			if out == "" {
				out = os.Getenv("out")
				// Nix's contract for a builder: $out does not exist yet.
				if _, err := os.Lstat(out); out != "" && err == nil {
					return usagef("staging: $out %s already exists; as a Nix builder, staging writes a new path", out)
				}
			}
			if out == "" {
				return usagef("staging: --out DIR is required (or $out)")
			}
			lock, err := lockArg(c)
			if err != nil {
				return err
			}
			var res *cargohash.Result
			if err := withSession(c, "writing and hashing "+out, func(s *cargohash.Session) (err error) {
				res, err = s.Staging(c.Context, lock, out)
				return err
			}); err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, res.CargoHash)
			return err
		},
	}
}

func outputHashesCommand() *cli.Command {
	return &cli.Command{
		Name:      "output-hashes",
		Usage:     "print importCargoLock's outputHashes for the git dependencies of a Cargo.lock",
		ArgsUsage: "[LOCK]",
		Flags:     append(fetchFlags(), &cli.BoolFlag{Name: "json", Usage: "print a JSON object"}),
		Action: func(c *cli.Context) error {
			lock, err := lockArg(c)
			if err != nil {
				return err
			}
			var hashes map[string]nixhash.Hash
			if err := withSession(c, "hashing", func(s *cargohash.Session) (err error) {
				hashes, err = s.OutputHashes(c.Context, lock)
				return err
			}); err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, hashes)
			}
			keys := make([]string, 0, len(hashes))
			for k := range hashes {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var b strings.Builder
			b.WriteString("{\n")
			for _, k := range keys {
				fmt.Fprintf(&b, "  %q = %q;\n", k, hashes[k].String())
			}
			b.WriteString("}\n")
			_, err = io.WriteString(c.App.Writer, b.String())
			return err
		},
	}
}
