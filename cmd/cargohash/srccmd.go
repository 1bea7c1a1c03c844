package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/hash/nixhash"
)

func srcCommand() *cli.Command {
	return &cli.Command{
		Name:  "src",
		Usage: "fetch a source and print its fetcher call with its hash and the cargoHash of its Cargo.lock",
		Description: `SOURCE is an archive URL (.tar.gz, .tar.xz, .tar.bz2, .tar.zst, .zip; http(s):// or
file://) → fetchzip; a GitHub, GitLab, Codeberg or sourcehut repository (URL, github:OWNER/REPO,
gitlab:…, codeberg:…, sourcehut:~OWNER/REPO, or OWNER/REPO for GitHub) with a REF →
fetchFromGitHub and friends; any other git URL with a REF → fetchgit; crate:NAME@VERSION →
fetchCrate; or a local directory (only the cargoHash). REF is a tag, a branch (pinned to its
current commit) or a commit; a forge URL ending in /tree/REF, /commit/REF or /releases/tag/REF
gives it too. An archive URL on a forge (…/archive/v1.tar.gz, a release asset) is fetchzip.`,
		ArgsUsage: "SOURCE [REF]",
		Flags: append(fetchFlags(),
			&cli.BoolFlag{Name: "json", Usage: `print nurl's {"fetcher", "args"} plus "cargoHash" / "outputHashes"`},
			&cli.BoolFlag{Name: "submodules", Usage: "fetch a forge repository with git, submodules included (fetchSubmodules = true)"},
			&cli.StringFlag{Name: "cargo-root", Usage: "the `DIR` of the source holding Cargo.lock (buildRustPackage's cargoRoot)"},
			&cli.StringSliceFlag{Name: "patch", Usage: "apply `FILE` (cargoPatches) with patch -p1 before reading the lock; repeatable"},
			&cli.BoolFlag{Name: "import-cargo-lock", Usage: "print cargoLock = { lockFile; outputHashes; } instead of cargoHash"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usagef("src: want SOURCE [REF], got %d arguments", c.NArg())
			}
			opt := cargohash.SrcOptions{
				Ref:             c.Args().Get(1),
				Submodules:      c.Bool("submodules"),
				CargoRoot:       c.String("cargo-root"),
				Patches:         c.StringSlice("patch"),
				ImportCargoLock: c.Bool("import-cargo-lock"),
			}
			var res *cargohash.SrcResult
			if err := withSession(c, "hashing", func(s *cargohash.Session) (err error) {
				res, err = s.Src(c.Context, c.Args().First(), opt)
				return err
			}); err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, srcJSON(res, opt.ImportCargoLock))
			}
			_, err := io.WriteString(c.App.Writer, srcNix(res, opt.ImportCargoLock))
			return err
		},
	}
}

// srcJSON is nurl's shape plus the lock's hashes.
func srcJSON(res *cargohash.SrcResult, importCargoLock bool) any {
	out := struct {
		Fetcher      string                  `json:"fetcher,omitempty"`
		Args         *orderedArgs            `json:"args,omitempty"`
		CargoHash    *nixhash.Hash           `json:"cargoHash,omitempty"`
		LockFile     string                  `json:"lockFile,omitempty"`
		OutputHashes map[string]nixhash.Hash `json:"outputHashes"`
	}{Fetcher: res.Fetcher, OutputHashes: res.Cargo.OutputHashes}
	if res.Fetcher != "" {
		out.Args = &orderedArgs{res.Args}
	}
	if importCargoLock {
		out.LockFile = res.LockFile
	} else {
		out.CargoHash = &res.Cargo.CargoHash
	}
	return out
}

// orderedArgs marshals as an object in the fetcher's argument order.
type orderedArgs struct{ args []cargohash.SrcArg }

func (o *orderedArgs) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, a := range o.args {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(a.Name)
		v, err := json.Marshal(a.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

// srcNix is the fragment to paste into a buildRustPackage call.
func srcNix(res *cargohash.SrcResult, importCargoLock bool) string {
	var b strings.Builder
	if res.Fetcher != "" {
		fmt.Fprintf(&b, "src = %s {\n", res.Fetcher)
		for _, a := range res.Args {
			fmt.Fprintf(&b, "  %s = %s;\n", a.Name, nixValue(a.Value))
		}
		b.WriteString("};\n")
	}
	if !importCargoLock {
		fmt.Fprintf(&b, "cargoHash = %s;\n", nixValue(res.Cargo.CargoHash.String()))
		return b.String()
	}
	fmt.Fprintf(&b, "cargoLock = {\n  lockFile = ./Cargo.lock; # a copy of the source's %s\n", res.LockFile)
	if len(res.Cargo.OutputHashes) > 0 {
		b.WriteString("  outputHashes = {\n")
		names := make([]string, 0, len(res.Cargo.OutputHashes))
		for n := range res.Cargo.OutputHashes {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			fmt.Fprintf(&b, "    %s = %s;\n", nixValue(n), nixValue(res.Cargo.OutputHashes[n].String()))
		}
		b.WriteString("  };\n")
	}
	b.WriteString("};\n")
	return b.String()
}

// nixValue spells a string or bool as a Nix expression.
func nixValue(v any) string {
	switch v := v.(type) {
	case bool:
		return strconv.FormatBool(v)
	case string:
		r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "${", `\${`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
		return `"` + r.Replace(v) + `"`
	}
	return fmt.Sprint(v)
}
