package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

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
		return exitMismatch // the upstream bytes are not the ones the lock pins
	case errors.Is(err, fetch.ErrFetch):
		return exitFetch
	case errors.As(err, &gitErr) && !errors.Is(err, git.ErrRefusedURL):
		return exitFetch
	}
	return exitInput
}

// run is the whole command: main only wires signals and the process's
// streams, so tests call run directly.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, interspersed(app, args))
	if err != nil && !errors.Is(err, errReported) {
		fmt.Fprintf(stderr, "cargohash: %s\n", strings.TrimSpace(err.Error()))
	}
	return exitCode(err)
}

// errReported wraps an error whose message the command already printed
// (a mismatch report); run prints nothing more.
var errReported = errors.New("reported")

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:            "cargohash",
		Usage:           "Cargo.lock → the fixed-output hashes and vendor trees Nix pins",
		Version:         cargohash.Version,
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		// Errors are mapped to exit codes in run, after deferred cleanups;
		// urfave/cli must not call os.Exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err.Error()}
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
		},
	}
}

// interspersed moves a command's flags before its positional arguments, so
// that `cargohash check LOCK --hash H` works: urfave/cli v2 stops reading
// flags at the first argument. "--" ends the flags as usual.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
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
