# cargohash developer recipes (https://github.com/casey/just; `npm i -g rust-just` installs it).

# the tests, as CI runs them
test:
    go test -timeout 30m ./...

# the README's main job: cargoHash of the bundled demo project, offline
demo:
    go run ./cmd/cargohash prefetch --offline --registry-dl "crates-io=file://$PWD/testdata/demo/mirror/crates/{crate}/{crate}-{version}.crate" testdata/demo

# benchmarks against the reference tools, ratios measured in one run
bench:
    bash bench/nar.sh
    go run ./bench/prefetch
    go run ./bench/tarball
    go test -run '^$' -bench FromStaging -benchtime 3x ./vendortree
    go test -run '^$' -bench CheckoutLatency ./fetch/git

# regenerate golden files from the reference tools (only in the packages that define -update)
update:
    go test $(grep -rl --include='*_test.go' 'flag.Bool("update"' . | xargs -n1 dirname | sort -u) -run 'Demo|Golden|Generate|ManPage' -update

# fail on unformatted files, then go vet and staticcheck
lint:
    @unformatted="$(gofmt -l .)"; if [ -n "$unformatted" ]; then echo "gofmt -l: $unformatted"; exit 1; fi
    go vet ./...
    go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
