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

# regenerate golden files from the reference tools
update:
    go test ./... -run 'Demo|Golden' -update

lint:
    go vet ./...
    gofmt -l .
