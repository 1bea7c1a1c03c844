package fetch

import (
	"go/build"
	"strings"
	"testing"
)

// TestImports keeps the layers: fetch and fetchtest use the standard
// library, lockfile and the few modules named here, never the packages
// that use them (the orchestrator, vendortree, the command line).
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/cargohash/cargohash/lockfile":          true,
		"github.com/cargohash/cargohash/fetch/cargoconfig": true,
		"github.com/hashicorp/go-retryablehttp":            true,
		"github.com/multiformats/go-multihash":             true,
	}
	for _, dir := range []string{".", "fetchtest"} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") && !allowed[imp] {
				t.Errorf("%s imports %s", pkg.ImportPath, imp)
			}
		}
	}
}
