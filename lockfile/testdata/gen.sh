#!/bin/sh
# Regenerates v2.lock, v3.lock, v4.lock with the real cargo, and v1.lock from
# v2.lock (cargo no longer writes v1). See README.md. Run from this directory:
#   sh gen.sh        (or: go test ./lockfile -run TestGenerate -update)
# Needs cargo (~/.cargo/bin), git, python3. No network: the registry crates come
# from a directory source and the git crate from a local file:// repository.
set -eu
PATH="$HOME/.cargo/bin:$PATH"
out=$(pwd)
w=/tmp/cargohash-lockfile-gen
rm -rf "$w"
mkdir -p "$w"
export CARGO_HOME="$w/cargo-home"
export GIT_AUTHOR_DATE=2024-01-01T00:00:00Z GIT_COMMITTER_DATE=2024-01-01T00:00:00Z
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.invalid GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.invalid
export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
export GIT_CONFIG_NOSYSTEM=1 HOME="$w"

# A git crate with the branches and the tag the selectors test.
mkdir -p "$w/repo/src"
cd "$w/repo"
git init -q -b main
printf '[package]\nname = "gdep"\nversion = "0.1.0"\nedition = "2021"\n' >Cargo.toml
: >src/lib.rs
git add -A
git commit -qm one
git tag v1.0
git branch feature/x
git branch 'a+b'
sha=$(git rev-parse HEAD)

# Registry crates, served from a directory source that replaces crates.io and
# a sparse registry; cargo copies the "package" checksum into the lock.
crate() { # name version checksum
	mkdir -p "$w/vendor/$1/src"
	printf '[package]\nname = "%s"\nversion = "%s"\nedition = "2021"\n' "$1" "$2" >"$w/vendor/$1/Cargo.toml"
	: >"$w/vendor/$1/src/lib.rs"
	printf '{"files":{},"package":"%s"}' "$3" >"$w/vendor/$1/.cargo-checksum.json"
}
crate regdep 1.0.0 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
crate sregdep 2.1.0 fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210

mkdir -p "$w/app/src" "$w/app/local/src" "$w/app/.cargo"
cd "$w/app"
: >src/lib.rs
: >local/src/lib.rs
printf '[package]\nname = "local"\nversion = "0.2.0"\nedition = "2021"\n' >local/Cargo.toml
cat >.cargo/config.toml <<EOT
[source.crates-io]
replace-with = "v"
[source.v]
directory = "$w/vendor"
[registries.sparsy]
index = "sparse+http://127.0.0.1:9/index/"
[source.sparsy-src]
registry = "sparse+http://127.0.0.1:9/index/"
replace-with = "v"
EOT

r="file://$w/repo"
# The lock version cargo writes follows rust-version: 1.50 -> v2, 1.77 -> v3, 1.90 -> v4.
for v in 2:1.50:2018 3:1.77:2021 4:1.90:2021; do
	IFS=: read -r lv rv ed <<EOT
$v
EOT
	cat >Cargo.toml <<EOT
[package]
name = "app"
version = "0.1.0"
edition = "$ed"
rust-version = "$rv"

[dependencies]
regdep = "1.0"
sregdep = { version = "2", registry = "sparsy" }
local = { path = "local" }
g1 = { package = "gdep", git = "$r", branch = "feature/x" }
g2 = { package = "gdep", git = "$r", branch = "a+b" }
g3 = { package = "gdep", git = "$r", tag = "v1.0" }
g4 = { package = "gdep", git = "$r" }
g5 = { package = "gdep", git = "$r", rev = "$sha" }
EOT
	rm -f Cargo.lock
	cargo generate-lockfile --quiet
	cp Cargo.lock "$out/v$lv.lock"
done

# v1: cargo >= 1.53 reads v1 but writes v2, so derive it from v2.lock the way
# cargo 1.52 laid it out: checksums move to [metadata] ("<none>" for git
# crates), dependencies are written "NAME VERSION (SOURCE)". regdep's entry is
# left out to exercise a missing checksum.
python3 - "$out/v2.lock" "$out/v1.lock" <<'EOT'
import re, sys
src = open(sys.argv[1]).read()
ids = {}
for m in re.finditer(r'name = "(.*)"\nversion = "(.*)"(?:\nsource = "(.*)")?', src):
    ids.setdefault(m.group(1), []).append((m.group(2), m.group(3)))
def full(dep):
    parts = dep.split(" ", 2)
    if len(parts) == 3:
        return dep
    vs = ids[parts[0]]
    v, s = vs[0]
    return "%s %s" % (parts[0], v) + (" (%s)" % s if s else "")
blocks, meta = [], []
for b in src.rstrip("\n").split("\n\n"):
    m = re.search(r'name = "(.*)"\nversion = "(.*)"(?:\nsource = "(.*)")?', b)
    c = re.search(r'\nchecksum = "(.*)"', b)
    if m and m.group(3) and m.group(1) != "regdep":
        meta.append('"checksum %s %s (%s)" = "%s"' % (m.group(1), m.group(2), m.group(3), c.group(1) if c else "<none>"))
    b = re.sub(r'\nchecksum = ".*"', "", b)
    b = re.sub(r'^ "(.*)",$', lambda d: ' "%s",' % full(d.group(1)), b, flags=re.M)
    blocks.append(b)
open(sys.argv[2], "w").write("\n\n".join(blocks) + "\n\n[metadata]\n" + "\n".join(sorted(meta)) + "\n")
EOT
rm -rf "$w"
