package fetch_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/cargohash/cargohash/fetch"
	"github.com/cargohash/cargohash/internal/fetchtest"
	"github.com/cargohash/cargohash/lockfile"
)

// Fetch every registry crate of a lock concurrently, as the orchestrator
// does, here from a loopback registry whose crates answer 503 once.
func Example() {
	reg := fetchtest.NewRegistry(nil, fetchtest.RegistryOptions{})
	defer reg.Close()
	lock := fetchtest.Lock(
		lockfile.Package{Name: "app", Version: "0.1.0", Dependencies: []string{"cfg-if", "libc"}},
		reg.AddCrate("cfg-if", "1.0.0", nil),
		reg.AddCrate("libc", "0.2.155", nil),
	)
	reg.Inject(reg.CratePath("libc", "0.2.155"), fetchtest.Fault{Kind: fetchtest.Status, Status: 503})

	lf, err := lockfile.Parse("Cargo.lock", lock)
	if err != nil {
		log.Fatal(err)
	}
	cache, _ := os.MkdirTemp("", "example-cache-")
	defer os.RemoveAll(cache)
	f, err := fetch.New(fetch.Options{CacheDir: cache, NoCargoHome: true, RetryWaitMin: 1})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	pkgs := lf.Fetchable()
	paths := make([]string, len(pkgs))
	g, ctx := errgroup.WithContext(context.Background())
	g.SetLimit(fetch.DefaultJobs)
	for i, p := range pkgs {
		g.Go(func() error {
			var err error
			paths[i], err = f.Crate(ctx, p)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}
	for i, p := range pkgs {
		fmt.Printf("%s: %d requests, cached as multihash: %v\n", p.ID(), reg.Requests(reg.CratePath(p.Name, p.Version)),
			filepath.Base(paths[i]) == "1220"+p.Checksum)
	}
	// Output:
	// cfg-if@1.0.0: 1 requests, cached as multihash: true
	// libc@0.2.155: 2 requests, cached as multihash: true
}

func ExampleDownloadURL() {
	pkg := lockfile.Package{Name: "serde", Version: "1.0.197"}
	fmt.Println(fetch.DownloadURL(fetch.CratesIODL, pkg))
	fmt.Println(fetch.DownloadURL("https://dl.example/{lowerprefix}/{crate}/{crate}-{version}.crate", pkg))
	// Output:
	// https://static.crates.io/crates/serde/1.0.197/download
	// https://dl.example/se/rd/serde/serde-1.0.197.crate
}
