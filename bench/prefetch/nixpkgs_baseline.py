"""The download half of nixpkgs' fetchCargoVendor, for bench/prefetch.

Written for this benchmark from the documented behaviour of nixpkgs'
pkgs/build-support/rust/fetch-cargo-vendor-util.py (create_vendor_staging),
not copied from it. What it does, as that script does:

  * reads Cargo.lock with tomllib and takes every package whose source is a
    registry ("registry+" or "sparse+") with its checksum;
  * one requests.Session shared by all workers, with urllib3 retries
    (3, backoff 0.5 s, on 500/502/503/504) mounted for http:// and https://
    and a cargo User-Agent;
  * copies Cargo.lock to OUT/Cargo.lock and creates OUT/tarballs;
  * downloads the crates with a ThreadPoolExecutor of 5 workers (the script
    uses min(5, cpu count); this uses 5, which favours it on small machines):
    each worker GETs the URL with stream=True and a (2 s, 10 s) timeout,
    writes the body in 1024-byte chunks to OUT/tarballs/NAME-VERSION.tar.gz
    while updating a sha256, and fails on a status that is not ok or a
    checksum that differs from the lock's;
  * stops at the first failure.

The benchmark then runs `nix hash path OUT`, the second half of the pipeline.
Git sources are not handled (the benchmark's locks have none).

    python3 nixpkgs_baseline.py LOCK DL OUT

DL is the registry's dl template ({crate}, {version}, ... markers, or none for
"/{crate}/{version}/download"). requests is HTTP/1.1 only.
"""

import hashlib
import shutil
import sys
import tomllib
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter, Retry

WORKERS = 5
TIMEOUT = (2, 10)


def crate_url(dl, name, version, checksum):
    if "{" not in dl:
        dl += "/{crate}/{version}/download"
    n = len(name)
    prefix = str(n) if n <= 2 else "3/" + name[0] if n == 3 else name[:2] + "/" + name[2:4]
    for marker, value in (
        ("{crate}", name),
        ("{version}", version),
        ("{prefix}", prefix),
        ("{lowerprefix}", prefix.lower()),
        ("{sha256-checksum}", checksum),
    ):
        dl = dl.replace(marker, value)
    return dl


def fetch(session, url, path, want):
    digest = hashlib.sha256()
    with session.get(url, stream=True, timeout=TIMEOUT) as resp:
        if not resp.ok:
            raise RuntimeError(f"GET {url}: status {resp.status_code}")
        with path.open("wb") as out:
            for chunk in resp.iter_content(1024):
                if chunk:
                    out.write(chunk)
                    digest.update(chunk)
    if digest.hexdigest() != want:
        raise RuntimeError(f"{url}: checksum {digest.hexdigest()}, lock says {want}")


def main(lock, dl, out):
    with open(lock, "rb") as f:
        packages = tomllib.load(f)["package"]
    crates = [
        p
        for p in packages
        if p.get("source", "").startswith(("registry+", "sparse+"))
    ]
    retries = Retry(total=3, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504])
    session = requests.Session()
    session.headers["User-Agent"] = "cargo/1.95.0"
    session.mount("http://", HTTPAdapter(max_retries=retries))
    session.mount("https://", HTTPAdapter(max_retries=retries))

    out = Path(out)
    out.mkdir()
    shutil.copy(lock, out / "Cargo.lock")
    tarballs = out / "tarballs"
    tarballs.mkdir()
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [
            pool.submit(
                fetch,
                session,
                crate_url(dl, p["name"], p["version"], p["checksum"]),
                tarballs / f"{p['name']}-{p['version']}.tar.gz",
                p["checksum"],
            )
            for p in crates
        ]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception() is not None:
                pool.shutdown(cancel_futures=True)
                raise f.exception()


if __name__ == "__main__":
    main(*sys.argv[1:])
