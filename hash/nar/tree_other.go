//go:build !linux

package nar

import "os"

func (t *diskTree) readDir(name string) ([]dirEntry, error) {
	des, err := os.ReadDir(t.path(name))
	return entries(des), relative(err, name)
}
