# cargohash developer recipes (https://github.com/casey/just; `npm i -g rust-just` installs it).

# the tests, as CI runs them
test:
    go test ./...

# the README's main job: cargoHash of the bundled demo project, offline
demo:
    go run ./cmd/cargohash prefetch --offline --registry-dl "crates-io=file://$PWD/testdata/demo/mirror/crates/{crate}/{crate}-{version}.crate" testdata/demo

# benchmarks against the reference tools, ratios measured in one run
bench:
    go test -run '^$' -bench . -benchtime 1x ./...

# regenerate golden files from the reference tools
update:
    go test ./... -run 'Demo|Golden' -update

lint:
    go vet ./...
    gofmt -l .
