package main

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/cargohash/cargohash/fetch/cargoconfig"
)

// cargoRegistries reads cargo's configuration of registries (names, index
// URLs, tokens) as cargo would in the directory of the first argument when
// it is a path (LOCK: a Cargo.lock or its directory), else in the current
// directory (no LOCK; src's URLs), with the process's environment.
func cargoRegistries(c *cli.Context) (*cargoconfig.Config, error) {
	dir := "."
	if arg := c.Args().First(); arg != "" {
		if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
			dir = arg
		} else if err == nil {
			dir = filepath.Dir(arg)
		}
	}
	return cargoconfig.Load(dir, os.Environ())
}
