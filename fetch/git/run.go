package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cargohash/cargohash/internal/redact"
)

// passEnv reports whether the GIT_* variable k reaches git from the
// caller's environment; every other GIT_* variable (GIT_DIR,
// GIT_CONFIG_PARAMETERS, GIT_ALLOW_PROTOCOL, …) is dropped so that the
// checkout does not depend on where cargohash happens to run. Proxies
// (HTTPS_PROXY, http_proxy, NO_PROXY, ALL_PROXY) are not GIT_* variables and
// pass unchanged.
func passEnv(k string) bool {
	switch k {
	case "GIT_PROXY_COMMAND", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_SSL_CAPATH",
		"GIT_TRACE", "GIT_TRACE_PACKET", "GIT_CURL_VERBOSE":
		return true
	}
	return false
}

// caBundle is the CA bundle git is given: NIX_GIT_SSL_CAINFO
// (nix-prefetch-git's override), GIT_SSL_CAINFO, NIX_SSL_CERT_FILE or
// SSL_CERT_FILE of environ, the first set; "" for the system's.
func caBundle(environ []string) string {
	for _, k := range []string{"NIX_GIT_SSL_CAINFO", "GIT_SSL_CAINFO", "NIX_SSL_CERT_FILE", "SSL_CERT_FILE"} {
		for _, kv := range environ {
			if v, ok := strings.CutPrefix(kv, k+"="); ok && v != "" {
				return v
			}
		}
	}
	return ""
}

// runner runs git isolated from the user's and the system's configuration,
// the way nix-prefetch-git does: HOME is a fresh directory (holding only a
// link to the user's .netrc, as nix-prefetch-git makes), no system or global
// config, no prompts, no LFS smudging.
type runner struct {
	git  string
	args []string // -c options put before every subcommand

	once sync.Once // makes home and env, for the first git run
	home string
	env  []string
	err  error
}

// newRunner finds git; the temporary HOME is made when git first runs
// (a fetch in process may need none), and close removes it.
func newRunner(gitPath string, stall time.Duration) (*runner, error) {
	if gitPath == "" {
		gitPath = "git"
	}
	p, err := exec.LookPath(gitPath)
	if err != nil {
		return nil, fmt.Errorf("finding git: %w", err)
	}
	return &runner{git: p, args: configArgs(os.Getenv("http_proxy"), stall)}, nil
}

// setup makes the temporary HOME and git's environment, once.
func (r *runner) setup() error {
	r.once.Do(func() {
		home, err := os.MkdirTemp("", "cargohash-git-home-")
		if err != nil {
			r.err = err
			return
		}
		netrc := os.Getenv("NETRC")
		if netrc == "" {
			if h, err := os.UserHomeDir(); err == nil {
				netrc = h + "/.netrc"
			}
		}
		if netrc != "" {
			if _, err := os.Stat(netrc); err == nil {
				// As nix-prefetch-git: private repositories keep working through .netrc.
				_ = os.Symlink(netrc, home+"/.netrc")
			}
		}
		r.home, r.env = home, isolatedEnv(os.Environ(), home)
	})
	return r.err
}

// close removes the temporary HOME, if git ran. No git of this runner
// may run after it.
func (r *runner) close() error {
	r.once.Do(func() { r.err = errors.New("git runner closed") })
	if r.home == "" {
		return nil
	}
	return os.RemoveAll(r.home)
}

// isolatedEnv returns environ without git's own knobs, plus the isolation
// variables. The CA bundle comes, in that order, from NIX_GIT_SSL_CAINFO
// (nix-prefetch-git's override), GIT_SSL_CAINFO, NIX_SSL_CERT_FILE and
// SSL_CERT_FILE.
func isolatedEnv(environ []string, home string) []string {
	cainfo := caBundle(environ)
	env := make([]string, 0, len(environ)+10)
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "GIT_") && !passEnv(k),
			k == "HOME", k == "XDG_CONFIG_HOME", k == "SSH_ASKPASS", k == "LC_ALL", k == "LANGUAGE":
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"GIT_LFS_SKIP_SMUDGE=1",
		"LC_ALL=C",
	)
	if cainfo != "" {
		env = append(env, "GIT_SSL_CAINFO="+cainfo)
	}
	return env
}

// configArgs are the -c options of every git invocation. protocol.ext.allow
// is git's default already; it is spelled out because ext:: runs commands.
// protocol.file.allow keeps git's default ("user"): the top-level fetch may
// use file://; submodule URLs are checked by submoduleTransportAllowed,
// not by git, because this package clones them itself.
// fetch.unpackLimit=1 keeps what a fetch receives as one pack and its index
// instead of a file per object (git's default below 100 objects): two
// files to create instead of dozens, a quarter of a cold fetch's CPU here,
// where creating files is slow. The objects and their verification are
// the same.
//
// http.lowSpeedLimit=1 with http.lowSpeedTime ends a transfer that has
// received nothing for the stall timeout (git's default is to wait for
// ever); it changes no result, only how long a dead server is waited for.
func configArgs(httpProxy string, stall time.Duration) []string {
	a := []string{
		"-c", "protocol.ext.allow=never",
		"-c", "gc.auto=0",
		"-c", "maintenance.auto=false",
		"-c", "advice.detachedHead=false",
		"-c", "init.defaultBranch=master",
		"-c", "core.fsmonitor=false",
		"-c", "fetch.unpackLimit=1",
		"-c", "http.lowSpeedLimit=1",
		"-c", "http.lowSpeedTime=" + strconv.Itoa(max(1, int((stall+time.Second-1)/time.Second))),
	}
	if httpProxy != "" {
		// nix-prefetch-git sets http.proxy from $http_proxy for every URL.
		a = append(a, "-c", "http.proxy="+httpProxy)
	}
	return a
}

// run runs git with args in dir and returns its stdout. On failure the error
// holds the subcommand and the tail of git's stderr.
func (r *runner) run(ctx context.Context, dir string, args ...string) ([]byte, error) {
	return r.output(ctx, dir, "", args...)
}

// runBare runs git with args on the bare repository repo (GIT_DIR=repo, so
// that a damaged repository is an error, never a reason for git to look
// for another one in the directories above) and returns its stdout.
func (r *runner) runBare(ctx context.Context, repo string, args ...string) ([]byte, error) {
	return r.output(ctx, repo, repo, args...)
}

// output runs git with args in dir, with GIT_DIR=gitDir unless that is "",
// and returns its stdout.
func (r *runner) output(ctx context.Context, dir, gitDir string, args ...string) ([]byte, error) {
	var stdout bytes.Buffer
	cmd, stderr, err := r.command(ctx, dir, gitDir, args...)
	if err != nil {
		return nil, err
	}
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) && ctx.Err() == nil {
			return nil, &startError{fmt.Errorf("running git %s: %w", args[0], err)}
		}
		return nil, failure(ctx, args[0], stderr, err)
	}
	return stdout.Bytes(), nil
}

// command is git with args in dir, with GIT_DIR=gitDir unless that is "",
// isolated (see runner); the tail of its stderr goes to the buffer returned,
// for failure.
func (r *runner) command(ctx context.Context, dir, gitDir string, args ...string) (*exec.Cmd, *bytes.Buffer, error) {
	if err := r.setup(); err != nil {
		return nil, nil, &startError{fmt.Errorf("git's temporary HOME: %w", err)}
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, r.git, append(append([]string{}, r.args...), args...)...)
	cmd.Dir = dir
	cmd.Env = r.env
	if gitDir != "" {
		cmd.Env = append(cmd.Env[:len(cmd.Env):len(cmd.Env)], "GIT_DIR="+gitDir)
	}
	cmd.Stderr = &limitedTail{max: 4096, buf: &stderr}
	// git starts helpers (git-remote-https, upload-pack for file://): on
	// cancellation kill the whole process group, not just git.
	// Where the system has it, a parent-death signal (sysProcAttr): a git
	// outliving a killed cargohash would go on writing into a cache
	// repository that the next run may be repairing.
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd, &stderr, nil
}

// startError is a git that could not run at all: its HOME could not be
// made or its process not started. That is the machine's trouble, never
// a sign that a repository is damaged (see cannotRun).
type startError struct{ err error }

func (e *startError) Error() string { return e.err.Error() }
func (e *startError) Unwrap() error { return e.err }

// cannotRun reports whether err is, or wraps, a *startError.
func cannotRun(err error) bool {
	se := (*startError)(nil)
	return errors.As(err, &se)
}

// failure is the error of the git subcommand that failed with err, with
// the tail of its stderr (URLs redacted), or ctx's error if ctx is done.
func failure(ctx context.Context, subcommand string, stderr *bytes.Buffer, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := redact.Text(strings.TrimSpace(stderr.String())) // git may echo a URL with its token
	if msg == "" {
		return fmt.Errorf("git %s: %w", subcommand, err)
	}
	return fmt.Errorf("git %s: %s (%w)", subcommand, strings.ReplaceAll(msg, "\n", "; "), err)
}

// limitedTail keeps the last max bytes written to it.
type limitedTail struct {
	max int
	buf *bytes.Buffer
}

func (l *limitedTail) Write(p []byte) (int, error) {
	l.buf.Write(p)
	if over := l.buf.Len() - l.max; over > 0 {
		l.buf.Next(over)
	}
	return len(p), nil
}

var _ io.Writer = (*limitedTail)(nil)
