package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/hash/nar"
	"github.com/cargohash/cargohash/hash/nixhash"
)

func narHashCommand() *cli.Command {
	return &cli.Command{
		Name:      "nar-hash",
		Usage:     "print the NAR hash of a path, like nix hash path",
		ArgsUsage: "PATH",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "type", Value: "sha256", Usage: "the hash algorithm: `sha256|sha512|sha1`"},
			&cli.BoolFlag{Name: "base32", Usage: "print nix32 instead of SRI"},
			&cli.BoolFlag{Name: "base16", Usage: "print base16 instead of SRI"},
			&cli.BoolFlag{Name: "base64", Usage: "print base64 instead of SRI"},
			&cli.BoolFlag{Name: "sri", Usage: "print SRI (the default)"},
		},
		Action: func(c *cli.Context) error {
			path, err := oneArg(c, "PATH")
			if err != nil {
				return err
			}
			algo, err := nixhash.ParseAlgorithm(c.String("type"))
			if err != nil {
				return usageError{err.Error()}
			}
			enc, err := encodingFlags(c)
			if err != nil {
				return err
			}
			h, err := cargohash.HashPath(c.Context, path, algo)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.App.Writer, h.Encode(enc))
			return err
		},
	}
}

// encodingFlags reads nix hash's --base32/--base16/--base64/--sri, at most one.
func encodingFlags(c *cli.Context) (nixhash.Encoding, error) {
	enc, n := nixhash.SRI, 0
	for flag, e := range map[string]nixhash.Encoding{"base32": nixhash.Nix32, "base16": nixhash.Base16, "base64": nixhash.Base64, "sri": nixhash.SRI} {
		if c.Bool(flag) {
			enc, n = e, n+1
		}
	}
	if n > 1 {
		return 0, usagef("--base32, --base16, --base64 and --sri exclude each other")
	}
	return enc, nil
}

func narDumpCommand() *cli.Command {
	return &cli.Command{
		Name:      "nar-dump",
		Usage:     "write the NAR serialisation of a path to stdout, like nix-store --dump",
		ArgsUsage: "PATH",
		Action: func(c *cli.Context) error {
			path, err := oneArg(c, "PATH")
			if err != nil {
				return err
			}
			if _, err := os.Lstat(path); err != nil {
				return err
			}
			return nar.Dump(c.Context, c.App.Writer, path)
		},
	}
}

func hashConvertCommand() *cli.Command {
	return &cli.Command{
		Name:      "hash-convert",
		Usage:     "convert hashes between SRI, nix32, base16 and base64",
		ArgsUsage: "HASH...",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "to", Value: "sri", Usage: "the form to print: `sri|nix32|base16|base64`"},
			&cli.StringFlag{Name: "type", Usage: "the algorithm of bare hashes, `sha256|sha512|sha1` (default: from their length)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("hash-convert: missing HASH argument")
			}
			to, err := nixhash.ParseEncoding(c.String("to"))
			if err != nil {
				return usageError{err.Error()}
			}
			var def nixhash.Algorithm
			if t := c.String("type"); t != "" {
				if def, err = nixhash.ParseAlgorithm(t); err != nil {
					return usageError{err.Error()}
				}
			}
			for _, s := range c.Args().Slice() {
				h, err := nixhash.ParseAs(s, def)
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintln(c.App.Writer, h.Encode(to)); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// oneArg returns the command's single positional argument.
func oneArg(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", usagef("%s: want exactly one %s argument, got %d", c.Command.Name, what, c.NArg())
	}
	return c.Args().First(), nil
}
