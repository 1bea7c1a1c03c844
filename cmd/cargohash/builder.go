package main

import (
	"runtime"
	"strconv"
)

// gitJobs is how many submodules of one repository git fetches at once
// when cargohash is a Nix builder: NIX_BUILD_CORES, where 0 means every
// core (as in nixpkgs' stdenv). Outside Nix (unset or not a number) it is
// 0, the session's default.
func gitJobs(getenv func(string) string) int {
	n, err := strconv.Atoi(getenv("NIX_BUILD_CORES"))
	switch {
	case err != nil || n < 0:
		return 0
	case n == 0:
		return runtime.NumCPU()
	}
	return n
}

// inNixBuilder tells whether cargohash runs as a Nix builder. Nix gives
// builders a pseudo-terminal and TERM=xterm-256color, but what they write
// is a build log, which wants plain progress lines. Nix sets NIX_LOG_FD
// for builders, and HOME to the non-existent /homeless-shelter.
func inNixBuilder(getenv func(string) string) bool {
	return getenv("NIX_LOG_FD") != "" || getenv("HOME") == "/homeless-shelter"
}
