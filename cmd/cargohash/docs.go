package main

import (
	"io"

	"github.com/urfave/cli/v2"
)

// The shell completion scripts ask cargohash itself for the words that may
// follow (urfave/cli's --generate-bash-completion), so they never go stale.
const bashCompletion = `# bash completion for cargohash.
# Install: cargohash completion bash > ~/.local/share/bash-completion/completions/cargohash
_cargohash() {
  local cur words
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == -* ]]; then
    words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    words=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o bashdefault -o default -F _cargohash cargohash
`

const zshCompletion = `#compdef cargohash
# zsh completion for cargohash.
# Install: cargohash completion zsh > "${fpath[1]}/_cargohash"
_cargohash() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ -n "${opts[1]}" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _cargohash cargohash
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: `Install it where the shell looks for completions:
   cargohash completion bash > ~/.local/share/bash-completion/completions/cargohash
   cargohash completion zsh > "${fpath[1]}/_cargohash"
   cargohash completion fish > ~/.config/fish/completions/cargohash.fish`,
		Action: func(c *cli.Context) error {
			shell, err := oneArg(c, "SHELL")
			if err != nil {
				return err
			}
			var script string
			switch shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				if script, err = c.App.ToFishCompletion(); err != nil {
					return err
				}
			default:
				return usagef("completion: unknown shell %q: want bash, zsh or fish", shell)
			}
			_, err = io.WriteString(c.App.Writer, script)
			return err
		},
	}
}

func manCommand() *cli.Command {
	return &cli.Command{
		Name:  "man",
		Usage: "print the manual page (troff)",
		Description: `Install it where man looks:
   cargohash man > ~/.local/share/man/man1/cargohash.1
docs/cargohash.1 in the source is the same page.`,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("man: takes no arguments")
			}
			page, err := manPage(c.App)
			if err != nil {
				return err
			}
			_, err = io.WriteString(c.App.Writer, page)
			return err
		},
	}
}

// manPage is the manual page, generated from the command definitions.
func manPage(app *cli.App) (string, error) {
	return app.ToManWithSection(1)
}
