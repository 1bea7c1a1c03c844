package main

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/cargohash/cargohash/fetch/cargoconfig"
)

// cargoRegistries reads cargo's configuration of registries (names, index
// URLs, tokens) as cargo would in the directory of the LOCK argument
// (".": the current directory, as without one), with the process's
// environment.
func cargoRegistries(c *cli.Context) (*cargoconfig.Config, error) {
	dir := c.Args().First()
	if dir == "" {
		dir = "."
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	return cargoconfig.Load(dir, os.Environ())
}
