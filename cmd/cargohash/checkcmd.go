package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/check"
	"github.com/cargohash/cargohash/hash/nixhash"
	"github.com/cargohash/cargohash/vendortree"
)

// checkJSONSchema is the --json output of check, shown in its help; the
// authoritative description is check.Result's doc comment.
const checkJSONSchema = `{"check": "lock"|"hash"|"vendor", "ok": bool,
    "problems": [{"code", "message"}], "src": path|"",
    "vendor": null|{"path", "kind": "staging"|"nixpkgs"|"cargo", "tarball": bool, "lock": path|""},
    "changes": [{"kind": "added"|"removed"|"changed", "name", "old": null|P, "new": null|P,
                 "fields": ["version"|"source"|"checksum"|"dependencies"], "text"}],
    "hash": null|{"specified", "got", "fake": bool, "knownLock": path|""},
    "crates": N,
    "issues": [{"kind", "crate", "dir", "file", "want", "got"}]}
   P = {"name", "version", "source", "checksum"}; every key is always present.
   problem codes: src-lock-missing, vendor-lock-missing, lock-packages-differ,
   lock-dependencies-differ, lock-line-endings-differ, lock-formatting-differs,
   hash-mismatch, vendor-tree. issue kinds: tampered, missing-file, extra-file,
   missing-crate, extra-crate, package-checksum, no-checksum-file,
   bad-checksum-file, bad-manifest.`

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "check that a Cargo.lock matches its vendor tree, tarball or pinned cargoHash (for CI)",
		ArgsUsage: "[LOCK]",
		Description: `Three forms; exit 0 when the check passes, 1 when it fails, 2 on a usage or input error
(a path that does not exist, a corrupt or truncated tarball, an unparsable lock), 3 on a fetch failure.

   check --src DIR --vendor PATH   (or: check LOCK --vendor PATH)
      The src Cargo.lock must be the Cargo.lock of PATH, byte for byte (as nixpkgs' cargoSetupHook
      requires; cargoHash covers those bytes). PATH is a staging dir, a vendor dir (nixpkgs or cargo
      layout) or a vendor tarball (.tar, .tar.gz, .tar.zst; Cargo.lock or TOP/Cargo.lock). Differences
      are listed by package, from PATH's lock to src's: "+" only in src, "-" only in PATH, "~" changed
      (version, source or git commit, checksum). The same packages in other bytes still fail, and the
      output says which: line endings only (CRLF vs LF), dependency lists, or formatting. A cargo-layout
      tree has no Cargo.lock: its crates (name and version from each Cargo.toml, the package checksum
      from .cargo-checksum.json) are compared with src's instead. PATH is then also verified as with
      --vendor alone.

   check LOCK --hash HASH
      Recomputes LOCK's cargoHash (fetching, like prefetch) and compares it with HASH (SRI, nix32,
      base16 or base64; "" for a fake hash). A mismatch prints Nix's report on stderr and, if cargohash
      hashed the lock that gave HASH before (it remembers them in its cache), what changed since.

   check --vendor PATH
      Every crate's files must match its .cargo-checksum.json (the nixpkgs layout lists no files:
      only package checksums are checked there), with no file missing or extra, and every package
      checksum must match the lock (PATH's Cargo.lock, or LOCK / --src); each tampered, missing or extra
      file and crate is named. A staging dir: each tarballs/NAME-VERSION.tar.gz against the lock.

--json prints:
   ` + checkJSONSchema,
		Flags: append(fetchFlags(),
			&cli.StringFlag{Name: "src", Usage: "the source `DIR` (or its Cargo.lock) whose lock is checked"},
			&cli.StringFlag{Name: "vendor", Usage: "staging dir, vendor dir or vendor tarball `PATH` to check against"},
			&cli.StringFlag{Name: "hash", Usage: "the pinned cargoHash `HASH` to check LOCK against"},
			&cli.StringFlag{Name: "name", Usage: "the derivation `NAME` in the hash mismatch report (default: the lock's directory name)"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON (schema in the description)"},
		),
		Action: runCheck,
	}
}

func runCheck(c *cli.Context) error {
	if c.NArg() > 1 {
		return usagef("check: want at most one LOCK argument, got %d", c.NArg())
	}
	src := c.String("src")
	if c.NArg() == 1 {
		if c.IsSet("src") {
			return usagef("check: give LOCK or --src, not both")
		}
		src = c.Args().First()
	}
	vendor := c.String("vendor")
	if base := filepath.Base(vendor); base == "Cargo.toml" || base == "Cargo.lock" {
		return usagef("check: --vendor %s is a project file, not a vendor tree: give the vendor directory, staging directory or vendor tarball (and the project as --src %s)", vendor, filepath.Dir(vendor))
	}
	var r *check.Result
	switch {
	case c.IsSet("hash"):
		if vendor != "" {
			return usagef("check: --hash and --vendor are separate checks; run check twice")
		}
		want, fake, err := nixhash.ParseExpected(c.String("hash"), nixhash.SHA256)
		if err != nil {
			return usageError{err.Error()}
		}
		lock, err := findLock(c, src)
		if err != nil {
			return err
		}
		if err := withSession(c, "hashing", func(s *cargohash.Session) (err error) {
			r, err = s.CheckHash(c.Context, lock, want, fake)
			return err
		}); err != nil {
			return err
		}
		if !r.OK {
			name := c.String("name")
			if name == "" {
				name = projectName(lock)
			}
			fmt.Fprint(c.App.ErrWriter, nixhash.MismatchReport(name+"-vendor-staging", r.Hash.Specified, r.Hash.Got))
		}
	case vendor != "":
		var err error
		if r, err = check.Vendor(c.Context, src, vendor); err != nil {
			return err
		}
	default:
		return usagef("check: give --vendor PATH (with --src DIR or LOCK to compare locks) or LOCK --hash HASH")
	}
	var err error
	if c.Bool("json") {
		err = writeJSON(c.App.Writer, r)
	} else {
		err = writeCheckText(c.App.Writer, r)
	}
	if err != nil {
		return err
	}
	if !r.OK {
		return fmt.Errorf("%w: %w", errReported, cargohash.ErrMismatch)
	}
	return nil
}

// writeCheckText prints a check result for people: the findings, then the
// problems with their advice, then "ok: …" or "FAILED: …" as the last line.
func writeCheckText(w io.Writer, r *check.Result) error {
	var b strings.Builder
	v := r.Vendor
	vendorDesc := ""
	if v != nil {
		kind := map[string]string{"staging": "staging dir", "nixpkgs": "nixpkgs-layout vendor tree", "cargo": "cargo-layout vendor tree"}[v.Kind.String()]
		if v.Tarball {
			kind += " in a tarball"
		}
		vendorDesc = fmt.Sprintf("%s (%s)", v.Path, kind)
	}
	if len(r.Changes) > 0 {
		from := vendorDesc
		if r.Hash != nil {
			from = "the lock that produced " + r.Hash.Specified.String()
		}
		fmt.Fprintf(&b, "Cargo.lock changes from %s to %s (+ only in the new, - only in the old, ~ changed):\n", from, r.Src)
		for _, ch := range r.Changes {
			fmt.Fprintf(&b, "  %s\n", ch.Text)
		}
	}
	if len(r.Issues) > 0 {
		fmt.Fprintf(&b, "problems in %s:\n", vendorDesc)
		for _, i := range r.Issues {
			fmt.Fprintf(&b, "  %s\n", i)
		}
	}
	for _, p := range r.Problems {
		if p.Code != "vendor-tree" {
			fmt.Fprintf(&b, "%s\n", strings.TrimRight(p.Message, "\n"))
		}
	}
	if !r.OK {
		codes := make([]string, len(r.Problems))
		for i, p := range r.Problems {
			codes[i] = p.Code
		}
		fmt.Fprintf(&b, "FAILED: %s\n", strings.Join(codes, ", "))
		_, err := io.WriteString(w, b.String())
		return err
	}
	switch r.Check {
	case "hash":
		fmt.Fprintf(&b, "ok: the cargoHash of %s is %s\n", r.Src, r.Hash.Got)
	case "lock":
		if v.Lock != "" {
			fmt.Fprintf(&b, "ok: %s is the Cargo.lock of %s, byte for byte\n", r.Src, vendorDesc)
		} else {
			fmt.Fprintf(&b, "ok: the crates of %s are those of %s (name, version, package checksum)\n", vendorDesc, r.Src)
		}
		if v.Kind != vendortree.Staging {
			fmt.Fprintf(&b, "ok: %d crates match their .cargo-checksum.json%s\n", r.Crates, lockNote(r))
		}
	case "vendor":
		fmt.Fprintf(&b, "ok: %d crates of %s match their .cargo-checksum.json%s\n", r.Crates, vendorDesc, lockNote(r))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func lockNote(r *check.Result) string {
	switch {
	case r.Vendor.Kind == vendortree.Staging:
		return " (staged .crate files against " + r.Vendor.Lock + ")"
	case r.Vendor.Lock != "":
		return " and " + r.Vendor.Lock
	case r.Src != "":
		return " (package checksums compared above)"
	}
	return " (no Cargo.lock in the tree and none given with --src: package checksums not compared with a lock)"
}
