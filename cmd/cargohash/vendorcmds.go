package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/lockfile"
	"github.com/cargohash/cargohash/vendortree"
)

func vendorCommand() *cli.Command {
	return &cli.Command{
		Name:      "vendor",
		Usage:     "write a vendor tree that cargo build --offline accepts",
		ArgsUsage: "[LOCK]",
		Flags: append(fetchFlags(),
			&cli.StringFlag{Name: "out", Usage: "the `DIR` to create (an existing one is replaced only if empty or an unchanged earlier vendor tree of this layout)"},
			&cli.StringFlag{Name: "staging", Usage: "build from this staging `DIR` instead of fetching LOCK"},
			&cli.StringFlag{Name: "layout", Value: "nixpkgs", Usage: "the layout, `nixpkgs|cargo`: fetchCargoVendor's, or what cargo vendor writes"},
			&cli.BoolFlag{Name: "absolute", Usage: "nixpkgs layout: write the output's path into .cargo/config.toml instead of @vendor@"},
			&cli.BoolFlag{Name: "versioned-dirs", Usage: "cargo layout: name every crate directory NAME-VERSION"},
		),
		Action: func(c *cli.Context) error {
			out := outFlag(c)
			if out == "" {
				return usagef("vendor: --out DIR is required")
			}
			opts := vendortree.Options{Absolute: c.Bool("absolute"), VersionedDirs: c.Bool("versioned-dirs")}
			switch c.String("layout") {
			case "nixpkgs":
				opts.Layout = vendortree.Nixpkgs
			case "cargo":
				opts.Layout = vendortree.Cargo
			default:
				return usagef("vendor: --layout %q: want nixpkgs or cargo", c.String("layout"))
			}
			// Each applies to one layout; given with the other, it would be
			// dropped without a word.
			if opts.Absolute && opts.Layout != vendortree.Nixpkgs {
				return usagef("vendor: --absolute is for the nixpkgs layout, whose .cargo/config.toml it changes")
			}
			if opts.VersionedDirs && opts.Layout != vendortree.Cargo {
				return usagef("vendor: --versioned-dirs is for --layout cargo (the nixpkgs layout names every crate directory NAME-VERSION already)")
			}
			var lock *lockfile.File
			var err error
			if staging := c.String("staging"); staging != "" {
				if c.NArg() > 0 {
					return usagef("vendor: give LOCK or --staging, not both")
				}
				var in vendortree.Staged
				if in, err = vendortree.StagingDir(staging); err != nil {
					return err
				}
				lock = in.Lock
				opts.Log = newProgress(c.App.ErrWriter, "", c.Bool("quiet")).log()
				err = vendortree.Write(c.Context, in, out, opts)
			} else {
				if lock, err = lockArg(c); err != nil {
					return err
				}
				p := newProgress(c.App.ErrWriter, "writing "+out, c.Bool("quiet"))
				opts.Log = p.log()
				err = withProgress(c, p, func(s *cargohash.Session) error {
					return s.Vendor(c.Context, lock, out, opts)
				})
			}
			if err != nil {
				return err
			}
			if opts.Layout == vendortree.Cargo {
				// What `cargo vendor` prints: the [source] config to use the
				// tree, its directory as the user wrote it.
				_, err = fmt.Fprint(c.App.Writer, vendortree.CargoSourceConfig(lock.Lockfile, out))
				return err
			}
			return nil
		},
	}
}

func tarballCommand() *cli.Command {
	return &cli.Command{
		Name:      "tarball",
		Usage:     "write a deterministic vendor tarball and print its SRI hash",
		ArgsUsage: "[LOCK]",
		Flags: append(fetchFlags(),
			&cli.StringFlag{Name: "out", Usage: "the `FILE` to write: .tar.gz, .tar.zst or .tar"},
			&cli.StringFlag{Name: "name", Usage: "the top directory is `NAME`-vendor (default: the lock's directory name)"},
		),
		Action: func(c *cli.Context) error {
			out := outFlag(c)
			if out == "" {
				return usagef("tarball: --out FILE is required")
			}
			if fi, err := os.Stat(out); err == nil && fi.IsDir() {
				return usagef("tarball: --out %s is a directory; --out names the file to write, e.g. --out %s", out, filepath.Join(out, "vendor.tar.gz"))
			}
			if _, err := cargohash.CompressionFor(out); err != nil {
				return usageError{err.Error()}
			}
			lock, err := lockArg(c)
			if err != nil {
				return err
			}
			name := c.String("name")
			if name == "" {
				name = projectName(lock)
			} else if strings.ContainsAny(name, "/\\") || name == "." || name == ".." {
				return usagef("tarball: --name %q: the top directory's name, without a slash", name)
			}
			var h nixhash.Hash
			if err := withSession(c, "writing "+out, func(s *cargohash.Session) (err error) {
				h, err = s.Tarball(c.Context, lock, out, name)
				return err
			}); err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, h)
			return err
		},
	}
}

// outFlag is --out, cleaned: "vendor/" (as a shell completes it) is the
// directory vendor, whose temporary names go beside it, not in it.
func outFlag(c *cli.Context) string {
	if out := c.String("out"); out != "" {
		return filepath.Clean(out)
	}
	return ""
}
