package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/cargohash/cargohash"
	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/fetch/git"
	"github.com/cargohash/cargohash/internal/publish"
)

// Exit codes, SPEC §1.
const (
	exitOK       = 0
	exitMismatch = 1 // a check or expectation failed
	exitInput    = 2 // usage or input error
	exitFetch    = 3 // fetch/network failure after retries
	exitCanceled = 130
)

// usageError marks a command line the user must correct.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitCode maps an error to the exit code of SPEC §1, in this one place.
func exitCode(err error) int {
	var gitErr *git.Error
	var sumErr *fetch.ChecksumError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitCanceled
	case errors.Is(err, publish.ErrRefused):
		return exitInput // an --out cargohash will not replace
	case errors.Is(err, cargohash.ErrMismatch):
		return exitMismatch
	case errors.As(err, &sumErr):
		return exitFetch // the source does not serve the bytes the lock pins
	case errors.Is(err, fetch.ErrFetch):
		return exitFetch
	case errors.As(err, &gitErr) && !errors.Is(err, git.ErrRefusedURL):
		return exitFetch
	}
	return exitInput
}

// maxReported caps the failed crates listed; the rest are counted.
const maxReported = 20

// run is the whole command: main only wires signals and the process's
// streams, so tests call run directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, interspersed(app, args))
	if err != nil && ctx.Err() != nil {
		// Whatever was cancelled, the cause is the user's Ctrl-C.
		fmt.Fprintln(stderr, "cargohash: interrupted")
		return exitCanceled
	}
	report(stderr, err)
	return exitCode(err)
}

// report prints err on stderr: one line per failure (a checksum mismatch
// continues on indented lines), each failed crate once, in lock order.
func report(stderr io.Writer, err error) {
	var crates cargohash.CrateErrors
	switch {
	case err == nil, errors.Is(err, errReported):
	case errors.As(err, &crates):
		for i, e := range crates {
			if i == maxReported {
				fmt.Fprintf(stderr, "cargohash: and %d more crates failed\n", len(crates)-i)
				break
			}
			fmt.Fprintf(stderr, "cargohash: %s\n", strings.TrimSpace(e.Error()))
		}
	default:
		fmt.Fprintf(stderr, "cargohash: %s\n", strings.TrimSpace(err.Error()))
	}
}

// errReported wraps an error whose message the command already printed
// (a mismatch report); run prints nothing more.
var errReported = errors.New("reported")

// description is the help's and the manual page's overview; the exit
// codes are exitCode's.
const description = `Results go to stdout; progress, warnings and errors to stderr. On any error
stdout is empty. LOCK is a Cargo.lock or a directory holding one; without
LOCK, the nearest Cargo.lock from the current directory upwards, as cargo
finds a workspace's lock (stderr says which when it is not in the directory
given). "cargohash help COMMAND" or "cargohash COMMAND --help" describes a
command.

Exit status:
   0    success
   1    a check or an expected hash did not match (check, prefetch --expect)
   2    usage or input error
   3    fetch failure: the network after retries, a crate missing from its
        source or from the cache offline, downloaded bytes that do not match
        the lock's checksum; every failed crate is named once, in lock order
   130  interrupted

Environment: HTTPS_PROXY, HTTP_PROXY, NO_PROXY, SSL_CERT_FILE,
NIX_SSL_CERT_FILE, CARGO_HOME (its download cache is reused),
XDG_CACHE_HOME.

Shell completion: "cargohash completion bash|zsh|fish". Manual page:
"cargohash man".`

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "cargohash",
		Usage:                "Cargo.lock → the fixed-output hashes and vendor trees Nix pins",
		UsageText:            "cargohash COMMAND [OPTIONS] [ARGUMENTS]",
		Description:          description,
		Version:              cargohash.Version,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		// urfave/cli adds --help only when it adds its own help command.
		Flags: []cli.Flag{cli.HelpFlag},
		// Errors are mapped to exit codes in run, after deferred cleanups;
		// urfave/cli must not call os.Exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		// Before a command's work (not --help or --version), once per
		// process, while the heap is still small; beside the command,
		// not before it: its collection (the process's first, which
		// starts the collector's threads) costs 4-6 ms, which the other
		// core absorbs while the command reads its lock.
		Before: func(*cli.Context) error { go prepareHeap(); return nil },
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q; see 'cargohash --help'", c.Args().First())
			}
			return usagef("no command given; see 'cargohash --help'")
		},
		Commands: []*cli.Command{
			prefetchCommand(),
			srcCommand(),
			stagingCommand(),
			outputHashesCommand(),
			vendorCommand(),
			tarballCommand(),
			narHashCommand(),
			narDumpCommand(),
			hashConvertCommand(),
			checkCommand(),
			completionCommand(),
			manCommand(),
			helpCommand(),
		},
	}
	for _, cmd := range app.Commands {
		// A usage error is one line on stderr, never the help on stdout.
		cmd.OnUsageError = onUsageError
		// Commands have no subcommands: no "help" subcommand listed.
		cmd.HideHelpCommand = true
	}
	return app
}

// helpCommand is "help [COMMAND]". It replaces urfave/cli's own, a global
// that adds itself to its own subcommands when run, after which generating
// the manual page recurses forever.
func helpCommand() *cli.Command {
	return &cli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show the help of cargohash or of a COMMAND",
		ArgsUsage: "[COMMAND]",
		HideHelp:  true,
		Action: func(c *cli.Context) error {
			switch {
			case c.NArg() == 0:
				return cli.ShowAppHelp(c)
			case c.NArg() > 1:
				return usagef("help: want at most one COMMAND, got %d", c.NArg())
			case c.App.Command(c.Args().First()) == nil:
				return usagef("help: unknown command %q; see 'cargohash --help'", c.Args().First())
			}
			return cli.ShowCommandHelp(c, c.Args().First())
		},
	}
}

// onUsageError turns the flag package's message into one line that names
// the flag as the user wrote it and where to read more:
// "prefetch: unknown flag --bogus; see 'cargohash prefetch --help'".
func onUsageError(c *cli.Context, err error, _ bool) error {
	where, name := "cargohash", ""
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != c.App.Name {
		where, name = "cargohash "+c.Command.Name, c.Command.Name+": "
	}
	return usagef("%s%s; see '%s --help'", name, flagMessage(err.Error()), where)
}

// flagMessages rewrite the flag package's errors, which name a flag as
// "-bogus", with the dashes the help shows.
var flagMessages = sync.OnceValue(func() []flagRewrite {
	return []flagRewrite{
		{regexp.MustCompile(`^flag provided but not defined: -+(.*)$`), "unknown flag %s"},
		{regexp.MustCompile(`^flag needs an argument: -+(.*)$`), "%s needs a value"},
		{regexp.MustCompile(`^invalid value (".*") for flag -+([^:]*): .*$`), "invalid value %[2]s for %[1]s"},
	}
})

type flagRewrite struct {
	re     *regexp.Regexp
	format string // given the flag, then the rest of the match
}

func flagMessage(msg string) string {
	for _, m := range flagMessages() {
		sub := m.re.FindStringSubmatch(msg)
		if sub == nil {
			continue
		}
		args := []any{dashed(sub[len(sub)-1])}
		if len(sub) > 2 {
			args = append(args, sub[1])
		}
		return fmt.Sprintf(m.format, args...)
	}
	return msg
}

// dashed is a flag's name as the help shows it: -q, --quiet.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// interspersed moves a command's flags before its positional arguments, so
// that `cargohash check LOCK --hash H` works: urfave/cli v2 stops reading
// flags at the first argument. "--" ends the flags as usual.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == "--generate-bash-completion" {
		return args // completion reads its flag last
	}
	var cmd *cli.Command
	i := 1
	for ; i < len(args); i++ {
		if !strings.HasPrefix(args[i], "-") {
			cmd = app.Command(args[i])
			break
		}
	}
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	out := append([]string{}, args[:i+1]...)
	var pos []string
	rest := args[i+1:]
	for j := 0; j < len(rest); j++ {
		a := rest[j]
		switch {
		case a == "--":
			pos = append(pos, rest[j:]...)
			j = len(rest)
		case strings.HasPrefix(a, "-") && a != "-":
			out = append(out, a)
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] && j+1 < len(rest) {
				j++
				out = append(out, rest[j])
			}
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) > 0 && pos[0] != "--" {
		out = append(out, "--")
	}
	return append(out, pos...)
}
