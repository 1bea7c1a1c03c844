# A drop-in for nixpkgs' fetchCargoVendor whose builder is cargohash: the same
# `hash` for the same Cargo.lock, and the same two derivations
# (NAME-vendor-staging, fixed-output, then NAME-vendor with the nixpkgs
# layout and its @vendor@ placeholder). It uses only builtins, so it
# evaluates with or without nixpkgs; see nix/README.md.
#
# First the tools, as callPackage passes them:
{
  # A package with bin/cargohash for the build platform (statically linked
  # is best: nothing else from the store is needed at build time).
  cargohash,
  # A package with bin/git; needed only for locks with git dependencies.
  git ? null,
  # A package with etc/ssl/certs/ca-bundle.crt (nixpkgs' cacert). Without
  # it only a NIX_SSL_CERT_FILE passed through impureEnvVars gives roots.
  cacert ? null,
  # Only its buildPlatform.system is used; without it, the current system.
  stdenvNoCC ? null,
}:

# Then fetchCargoVendor's arguments.
{
  name ?
    if args ? pname && args ? version then "${args.pname}-${args.version}" else "cargo-deps",
  hash ? throw "fetchCargoVendor requires a `hash` value to be set for ${name}",
  # An unpacked source tree (fetchFromGitHub, fetchgit, a path, ...).
  src ? null,
  # The directory of Cargo.lock inside src, as in buildRustPackage.
  cargoRoot ? null,
  # The lock itself, for sources that do not hold it or need it patched;
  # defaults to src/cargoRoot/Cargo.lock.
  lockFile ?
    if src == null then
      throw "fetchCargoVendor (cargohash): ${name}: give src or lockFile"
    else if cargoRoot == null then
      "${src}/Cargo.lock"
    else
      "${src}/${cargoRoot}/Cargo.lock",
  # More flags for `cargohash staging`, e.g. [ "--registry-dl" "crates-io=https://mirror/{crate}/{version}" ].
  cargohashFlags ? [ ],
  # Names of more environment variables to pass from the caller (single-user
  # Nix) or the nix-daemon into the fixed-output derivation, as nixpkgs'
  # fetchers pass proxies: the tokens of private registries, e.g.
  # [ "CARGO_REGISTRIES_CORP_TOKEN" ]. Their values are not part of the
  # derivation, and the hash does not depend on them. See nix/README.md.
  impureEnvVars ? [ ],
  # Other buildRustPackage arguments (patches, sourceRoot, ...) are accepted
  # and ignored: cargohash reads lockFile as it is in the store.
  ...
}@args:

let
  system = if stdenvNoCC != null then stdenvNoCC.buildPlatform.system else builtins.currentSystem;
  exe = "${cargohash}/bin/cargohash";

  vendorStaging = derivation (
    {
      name = "${name}-vendor-staging";
      inherit system;
      builder = exe;
      # $out is the output (builder mode, SPEC §9).
      args = [ "staging" ] ++ cargohashFlags ++ [ "${lockFile}" ];
      outputHash = hash;
      outputHashMode = "recursive";
      # lib.fetchers.proxyImpureEnvVars
      impureEnvVars = [
        "http_proxy"
        "https_proxy"
        "ftp_proxy"
        "all_proxy"
        "no_proxy"
        "HTTP_PROXY"
        "HTTPS_PROXY"
        "FTP_PROXY"
        "ALL_PROXY"
        "NO_PROXY"
        "NIX_SSL_CERT_FILE"
      ]
      ++ impureEnvVars;
      PATH = if git != null then "${git}/bin" else "/path-not-set";
    }
    // (if hash == "" then { outputHashAlgo = "sha256"; } else { })
    // (if cacert != null then { SSL_CERT_FILE = "${cacert}/etc/ssl/certs/ca-bundle.crt"; } else { })
  );
in
derivation {
  name = "${name}-vendor";
  inherit system vendorStaging;
  builder = exe;
  args = [
    "vendor"
    "--staging"
    "${vendorStaging}"
    "--out"
    (builtins.placeholder "out")
  ];
}
