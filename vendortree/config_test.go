package vendortree

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

// nixpkgsConfigPy computes the nixpkgs layout's config.toml the way
// fetch-cargo-vendor-util.py's create_vendor does (source numbering, dict
// order, the selector tables), with SPEC §4's deviation (every registry
// replaced with vendored-registry-source-0), and serialises it with the
// real tomli_w. Input on stdin: the lock as JSON (version, package
// sources); output: the file.
const nixpkgsConfigPy = `
import json, re, sys
from urllib.parse import unquote
import tomli_w
lock = json.load(sys.stdin)
GIT = re.compile(r"git\+(?P<url>[^?]+)(\?(?P<type>rev|tag|branch)=(?P<value>.*))?#(?P<sha>.*)")
cratesio = ["registry+https://github.com/rust-lang/crates.io-index", "sparse+https://index.crates.io/"]
seen = set(cratesio)
cfg = {"vendored-registry-source-0": {"directory": VENDOR + "/source-registry"},
       "crates-io": {"replace-with": "vendored-registry-source-0"}}
reg = 1
gits = {}
done = set()
for raw in lock["sources"]:
    if raw in seen:
        continue
    seen.add(raw)
    if raw.startswith("git+"):
        m = GIT.match(raw).groupdict()
        value = m["value"]
        if lock["version"] >= 4 and value is not None:
            value = unquote(value)
        tup = (m["url"], m["type"], value)
        if tup not in gits:
            gits[tup] = len(gits)
        n = gits[tup]
        if n in done:
            continue
        done.add(n)
        cfg["vendored-git-source-%d" % n] = {"directory": VENDOR + "/source-git-%d" % n}
        sel = {"git": m["url"]}
        if m["type"] is not None:
            sel[m["type"]] = value
        sel["replace-with"] = "vendored-git-source-%d" % n
        cfg["original-git-source-%d" % n] = sel
    else:
        url = raw if raw.startswith("sparse+") else raw[len("registry+"):]
        cfg["original-registry-source-%d" % reg] = {"registry": url, "replace-with": "vendored-registry-source-0"}
        reg += 1
sys.stdout.write(tomli_w.dumps({"source": cfg}))
`

func TestNixpkgsConfigMatchesTomliW(t *testing.T) {
	py := "/usr/bin/python3"
	if exec.Command(py, "-c", "import tomli_w").Run() != nil {
		py = reftest.Need(t, "python3")
		if exec.Command(py, "-c", "import tomli_w").Run() != nil {
			if strings.EqualFold(getenv("CI"), "true") {
				t.Fatal("python3 with tomli_w needed (apt-get install python3-tomli-w)")
			}
			t.Skip("python3 with tomli_w needed (apt-get install python3-tomli-w)")
		}
	}
	sum := strings.Repeat("a", 64)
	pkg := func(name, source string) string {
		s := "\n[[package]]\nname = \"" + name + "\"\nversion = \"1.0.0\"\nsource = \"" + source + "\"\n"
		if !strings.HasPrefix(source, "git+") {
			s += "checksum = \"" + sum + "\"\n"
		}
		return s
	}
	lockText := "version = 4\n" +
		"\n[[package]]\nname = \"local\"\nversion = \"0.1.0\"\n" +
		pkg("a", "registry+https://github.com/rust-lang/crates.io-index") +
		pkg("b", "git+https://example.com/x?branch=feature%2Fx#"+sha1) +
		pkg("c", "sparse+https://index.crates.io/") +
		pkg("d", "registry+https://example.com/index") +
		pkg("e", "git+https://example.com/x?branch=feature%2Fx#"+sha2) + // same selector, other commit
		pkg("f", "sparse+https://r.example/idx/") +
		pkg("g", "git+https://example.com/y#"+sha1) +
		pkg("h", "git+https://example.com/y?tag=v1.0%22q%22#"+sha1) +
		pkg("i", "git+ssh://git@example.com/z.git?rev=abc123#"+sha2) +
		pkg("j", "registry+https://example.com/index")
	lock, err := lockfile.Parse("Cargo.lock", []byte(lockText))
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"version": lock.Version}
	var sources []string
	for _, p := range lock.Packages {
		if p.Source.Kind != lockfile.Local {
			sources = append(sources, p.Source.Raw)
		}
	}
	in["sources"] = sources
	js, _ := json.Marshal(in)
	for _, vendor := range []string{VendorPlaceholder, "/nix/store/x-vendor \"odd\"\\dir"} {
		vjs, _ := json.Marshal(vendor)
		cmd := exec.Command(py, "-c", "VENDOR = "+string(vjs)+"\n"+nixpkgsConfigPy)
		cmd.Stdin = bytes.NewReader(js)
		want, err := cmd.Output()
		if err != nil {
			t.Fatalf("python: %v", err)
		}
		if got := NixpkgsConfig(lock, vendor); got != string(want) {
			t.Errorf("config for %q:\n%s\ntomli_w:\n%s", vendor, got, want)
		}
	}
}

func TestNixpkgsChecksumMatchesPythonJSON(t *testing.T) {
	py := reftest.Need(t, "python3")
	out, err := exec.Command(py, "-c", `import json,sys; sys.stdout.write(json.dumps({"files": {}, "package": "`+strings.Repeat("ab", 32)+`"}) + "\n" + json.dumps({"files": {}}))`).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(string(out), "\n")
	if got := string(nixpkgsChecksum(strings.Repeat("ab", 32))); got != want[0] {
		t.Errorf("registry: %s, python: %s", got, want[0])
	}
	if got := string(nixpkgsChecksum("")); got != want[1] {
		t.Errorf("git: %s, python: %s", got, want[1])
	}
}

func TestWriteJSONStringLikeSerde(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"<&>", `"<&>"`},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"\x7f", "\"\x7f\""},
		{"\"\\", `"\"\\"`},
		{"\b\t\n\f\r", `"\b\t\n\f\r"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"é日本", `"é日本"`},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		writeJSONString(&b, tt.in)
		if b.String() != tt.want {
			t.Errorf("%q: %s, want %s", tt.in, b.String(), tt.want)
		}
	}
	got := string(cargoChecksum(map[string]string{"b": "2", "a/x": "1", "B": "0"}, ""))
	if want := `{"files":{"B":"0","a/x":"1","b":"2"},"package":null}`; got != want {
		t.Errorf("cargoChecksum: %s, want %s", got, want)
	}
}

func TestCompareVersions(t *testing.T) {
	ordered := []string{"0.1.0", "0.2.0-alpha", "0.2.0-alpha.1", "0.2.0-alpha.beta", "0.2.0-beta.2", "0.2.0-beta.11", "0.2.0-rc.1", "0.2.0", "0.2.0+build", "0.10.0", "1.0.0"}
	for i := range ordered {
		for j := range ordered {
			c := compareVersions(ordered[i], ordered[j])
			if (i < j && c >= 0) || (i > j && c <= 0) || (i == j && c != 0) {
				t.Errorf("compare(%s, %s) = %d", ordered[i], ordered[j], c)
			}
		}
	}
}
