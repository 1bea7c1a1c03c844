package fetch

import (
	"os"
	"path/filepath"
	"runtime/debug"
)

// DefaultCacheDir is $XDG_CACHE_HOME/cargohash, else ~/.cache/cargohash, or
// "" when neither is usable (no HOME, or a HOME that does not exist, as in a
// Nix builder).
func DefaultCacheDir() string {
	if x := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "cargohash")
	}
	home := os.Getenv("HOME")
	if !filepath.IsAbs(home) {
		return ""
	}
	if fi, err := os.Stat(home); err != nil || !fi.IsDir() {
		return ""
	}
	return filepath.Join(home, ".cache", "cargohash")
}

// defaultCargoHome is $CARGO_HOME, else ~/.cargo, else "".
func defaultCargoHome() string {
	if c := os.Getenv("CARGO_HOME"); c != "" {
		return c
	}
	if home := os.Getenv("HOME"); filepath.IsAbs(home) {
		return filepath.Join(home, ".cargo")
	}
	return ""
}

// moduleVersion is the version of the main module, "devel" for a build
// from a work tree.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
