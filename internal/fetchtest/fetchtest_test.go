package fetchtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cargohash/cargohash/internal/reftest"
	"github.com/cargohash/cargohash/lockfile"
)

func TestCrate(t *testing.T) {
	files := map[string]string{"src/lib.rs": "pub fn f() {}\n", "README.md": "hi\n"}
	a := Crate("demo", "0.1.0", files)
	if b := Crate("demo", "0.1.0", files); !bytes.Equal(a, b) {
		t.Fatal("Crate is not deterministic")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if !hdr.ModTime.Equal(CrateMTime) || hdr.Mode != 0o644 {
			t.Errorf("%s: mtime %v mode %o", hdr.Name, hdr.ModTime, hdr.Mode)
		}
	}
	want := []string{"demo-0.1.0/Cargo.toml", "demo-0.1.0/README.md", "demo-0.1.0/src/lib.rs"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("entries %q, want %q", names, want)
	}

	// GNU tar reads it the same way.
	tarBin := reftest.Need(t, "tar")
	dir := t.TempDir()
	p := filepath.Join(dir, "demo-0.1.0.crate")
	os.WriteFile(p, a, 0o644)
	out, err := exec.Command(tarBin, "-tzf", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out)); !reflect.DeepEqual(got, want) {
		t.Errorf("tar -t: %q, want %q", got, want)
	}
}

func TestLock(t *testing.T) {
	reg := NewRegistry(t, RegistryOptions{})
	pkgs := []lockfile.Package{
		{Name: "app", Version: "0.1.0", Dependencies: []string{"serde", "cc"}},
		reg.AddCrate("cc", "1.0.0", nil),
		CratesIO("serde", "1.0.197", []byte("x")),
	}
	lf, err := lockfile.Parse("Cargo.lock", Lock(pkgs...))
	if err != nil {
		t.Fatal(err)
	}
	if lf.Version != 4 || len(lf.Packages) != 3 {
		t.Fatalf("parsed %+v", lf)
	}
	for i, p := range lf.Packages {
		want := pkgs[i]
		if p.Name != want.Name || p.Version != want.Version || p.Source != want.Source || p.Checksum != want.Checksum || !reflect.DeepEqual(p.Dependencies, want.Dependencies) {
			t.Errorf("package %d: %+v, want %+v", i, p, want)
		}
	}
}

func TestRegistry(t *testing.T) {
	reg := NewRegistry(t, RegistryOptions{DL: "/dl/{prefix}/{crate}-{version}-{sha256-checksum}.crate"})
	data := Crate("Serde", "1.0.0", nil)
	pkg := reg.Add("Serde", "1.0.0", data)
	reg.Add("Serde", "1.0.1", []byte("other"))
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(reg.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/index/config.json"); code != 200 || body != `{"api":"`+reg.URL+`","dl":"`+reg.URL+`/dl/{prefix}/{crate}-{version}-{sha256-checksum}.crate"}` {
		t.Errorf("config.json: %d %s", code, body)
	}
	wantIndex := `{"name":"Serde","vers":"1.0.0","deps":[],"cksum":"` + pkg.Checksum + `","features":{},"yanked":false}` + "\n" +
		`{"name":"Serde","vers":"1.0.1","deps":[],"cksum":"` + Checksum([]byte("other")) + `","features":{},"yanked":false}` + "\n"
	if code, body := get("/index/se/rd/serde"); code != 200 || body != wantIndex {
		t.Errorf("index: %d %s", code, body)
	}
	if p := reg.CratePath("Serde", "1.0.0"); p != "/dl/Se/rd/Serde-1.0.0-"+pkg.Checksum+".crate" {
		t.Errorf("CratePath = %s", p)
	}
	if code, body := get(reg.CratePath("Serde", "1.0.0")); code != 200 || body != string(data) {
		t.Errorf("crate: %d, %d bytes", code, len(body))
	}
	if code, _ := get("/index/se/rd/other"); code != 404 {
		t.Errorf("unknown index file: %d", code)
	}

	// Faults apply in order, then normal service resumes.
	p := reg.CratePath("Serde", "1.0.0")
	reg.Inject(p, Fault{Kind: Status, Status: 503, RetryAfter: "2", Times: 2}, Fault{Kind: WrongBytes})
	for i, want := range []int{503, 503, 200, 200} {
		code, body := get(p)
		if code != want {
			t.Errorf("request %d: %d, want %d", i, code, want)
		}
		if i == 2 && body == string(data) {
			t.Error("WrongBytes served the right bytes")
		}
		if i == 3 && body != string(data) {
			t.Error("service did not resume")
		}
	}
	if n := reg.Requests(p); n != 5 {
		t.Errorf("Requests = %d, want 5", n)
	}

	// A stall is cut short when the client gives up.
	reg.Inject(p, Fault{Kind: Stall, Delay: time.Minute})
	c := &http.Client{Timeout: 100 * time.Millisecond}
	start := time.Now()
	if resp, err := c.Get(reg.URL + p); err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Error("stalled body read to the end")
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stall took %v", d)
	}
}

func TestWriteMirror(t *testing.T) {
	dir := t.TempDir()
	data := Crate("rand", "0.8.5", nil)
	dl, pkgs, err := WriteMirror(dir, []CrateData{{Name: "rand", Version: "0.8.5", Data: data}})
	if err != nil {
		t.Fatal(err)
	}
	if want := "file://" + dir + "/crates/{crate}/{crate}-{version}.crate"; dl != want {
		t.Errorf("dl = %s, want %s", dl, want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "crates", "rand", "rand-0.8.5.crate")); err != nil || !bytes.Equal(b, data) {
		t.Errorf("crate file: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "ra", "nd", "rand")); err != nil || !strings.Contains(string(b), pkgs[0].Checksum) {
		t.Errorf("index file: %q %v", b, err)
	}
	if pkgs[0].Source.Raw != "sparse+file://"+dir+"/" {
		t.Errorf("source %q", pkgs[0].Source.Raw)
	}
}

// TestCargo checks the registry, the crates and the lock text against cargo:
// cargo resolves against the sparse index, downloads through the dl
// template, builds the crates and writes the Cargo.lock that Lock renders.
func TestCargo(t *testing.T) {
	cargo := reftest.Need(t, "cargo")
	reftest.Need(t, "rustc")
	reg := NewRegistry(t, RegistryOptions{DL: "/dl/{lowerprefix}/{crate}/{crate}-{version}.crate"})
	dep := reg.AddCrate("Ab", "1.2.3", map[string]string{"src/lib.rs": "pub fn ab() -> u32 { 2 }\n"})
	other := reg.AddCrate("fetchtest-demo", "0.3.0", map[string]string{"src/lib.rs": "pub fn demo() -> u32 { 3 }\n"})

	dir := t.TempDir()
	home := filepath.Join(dir, "cargo-home")
	proj := filepath.Join(dir, "app")
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(home, "config.toml"), "[registries.fake]\nindex = \"sparse+"+reg.IndexURL()+"\"\n")
	write(filepath.Join(proj, "Cargo.toml"), `[package]
name = "app"
version = "0.1.0"
edition = "2021"

[dependencies]
Ab = { version = "1", registry = "fake" }
fetchtest-demo = { version = "0.3", registry = "fake" }
`)
	write(filepath.Join(proj, "src", "main.rs"), "fn main() { println!(\"{}\", Ab::ab() + fetchtest_demo::demo()); }\n")

	cmd := exec.Command(cargo, "run", "--quiet")
	cmd.Dir = proj
	cmd.Env = append(os.Environ(), "CARGO_HOME="+home, "CARGO_TARGET_DIR="+filepath.Join(dir, "target"),
		"CARGO_NET_RETRY=0", "CARGO_TERM_COLOR=never", "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cargo run: %v\n%s", err, stderr.String())
	}
	if string(out) != "5\n" {
		t.Errorf("cargo run printed %q", out)
	}

	got, err := os.ReadFile(filepath.Join(proj, "Cargo.lock"))
	if err != nil {
		t.Fatal(err)
	}
	want := Lock(
		dep,
		lockfile.Package{Name: "app", Version: "0.1.0", Dependencies: []string{"Ab", "fetchtest-demo"}},
		other,
	)
	if string(got) != string(want) {
		t.Errorf("cargo's Cargo.lock:\n%s\nLock:\n%s", got, want)
	}

	// cargo's download cache holds the served bytes.
	matches, _ := filepath.Glob(filepath.Join(home, "registry", "cache", "*", "Ab-1.2.3.crate"))
	if len(matches) != 1 {
		t.Fatalf("cargo cache: %q", matches)
	}
	if b, _ := os.ReadFile(matches[0]); Checksum(b) != dep.Checksum {
		t.Error("cargo cached other bytes")
	}
	if n := reg.Requests(reg.CratePath("Ab", "1.2.3")); n != 1 {
		t.Errorf("cargo made %d download requests, want 1", n)
	}
}
