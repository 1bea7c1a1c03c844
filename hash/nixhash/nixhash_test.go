package nixhash

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cargohash/cargohash/internal/reftest"
)

const helloHex = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" // sha256("hello\n")

func TestParseForms(t *testing.T) {
	want, _ := New(SHA256, mustHex(helloHex))
	forms := []string{
		"sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=",
		"sha256:" + helloHex,
		"sha256:00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq",
		"sha256:WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=",
		helloHex,
		strings.ToUpper(helloHex),
		"00xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq",
		"WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=",
	}
	for _, s := range forms {
		got, err := ParseAs(s, 0)
		if err != nil {
			t.Errorf("ParseAs(%q): %v", s, err)
			continue
		}
		if !got.Equal(want) {
			t.Errorf("ParseAs(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"sha256-AAAA", "invalid SRI sha256 hash"},
		{"sha3-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=", "unknown hash algorithm"},
		{"blake3:" + helloHex, "unknown hash algorithm"},
		{"sha256:" + helloHex[:63], "not 63"},
		{"sha256:" + helloHex[:63] + "g", "invalid base16"},
		{"sha256:e0xyyr3fi8l6hb839bv3f7yb86yjv7xi1cgh1xnhipym4asvb4aq", "invalid nix32"},
		{"0123", "fit no sha256"},
		{"sha512-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=", "invalid SRI sha512"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("Parse(%q) error = %v, want one line containing %q", tt.in, err, tt.want)
		}
	}
}

func TestExpectedFake(t *testing.T) {
	for _, s := range []string{
		"",
		"sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",                     // lib.fakeHash
		"0000000000000000000000000000000000000000000000000000",                    // lib.fakeSha256
		"sha256:0000000000000000000000000000000000000000000000000000000000000000", // base16 zeros
	} {
		h, fake, err := ParseExpected(s, SHA256)
		if err != nil || !fake || h.String() != "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" {
			t.Errorf("ParseExpected(%q) = %v, %v, %v; want the fake sha256", s, h, fake, err)
		}
	}
	if _, fake, _ := ParseExpected(helloHex, SHA256); fake {
		t.Errorf("a real hash counted as fake")
	}
}

func TestMismatchReport(t *testing.T) {
	spec, _, _ := ParseExpected("", SHA256)
	got, _ := Parse("sha256:" + helloHex)
	want := "error: hash mismatch in fixed-output derivation '/nix/store/x-demo-vendor-staging.drv':\n" +
		"         specified: sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" +
		"            got:    sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=\n"
	if r := MismatchReport("/nix/store/x-demo-vendor-staging.drv", spec, got); r != want {
		t.Fatalf("report:\n%s\nwant:\n%s", r, want)
	}
}

// TestAgainstNix converts random digests with Nix and with this package.
func TestAgainstNix(t *testing.T) {
	nixHash := reftest.Need(t, "nix-hash")
	nix, feat := reftest.Nix(t)
	for _, a := range []Algorithm{SHA256, SHA512, SHA1, MD5} {
		for range 3 {
			d := make([]byte, a.Size())
			rand.Read(d)
			h, _ := New(a, d)
			b16 := hex.EncodeToString(d)
			if got := strings.TrimSpace(string(reftest.Run(t, nixHash, "--type", a.String(), "--to-base32", b16))); got != h.Encode(Nix32) {
				t.Errorf("%s nix32: nix-hash says %s, we say %s", a, got, h.Encode(Nix32))
			}
			if got := strings.TrimSpace(string(reftest.Run(t, nixHash, "--type", a.String(), "--to-base16", h.Encode(Nix32)))); got != b16 {
				t.Errorf("%s base16: nix-hash says %s, we say %s", a, got, b16)
			}
			args := append(append([]string{}, feat...), "hash", "to-sri", "--type", a.String(), h.Encode(Nix32))
			if got := strings.TrimSpace(string(reftest.Run(t, nix, args...))); got != h.String() {
				t.Errorf("%s SRI: nix hash to-sri says %s, we say %s", a, got, h)
			}
			for _, e := range []Encoding{SRI, Nix32, Base16, Base64} {
				s := h.Encode(e)
				if e != SRI {
					s = a.String() + ":" + s
				}
				back, err := Parse(s)
				if err != nil || !back.Equal(h) {
					t.Errorf("Parse(%q) = %v, %v", s, back, err)
				}
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM=", "sha1:" + helloHex[:40], helloHex, "sha512:", "md5-", ":", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseAs(s, 0)
		if err != nil {
			return
		}
		for _, e := range []Encoding{SRI, Nix32, Base16, Base64} {
			enc := h.Encode(e)
			if e != SRI {
				enc = h.Algorithm().String() + ":" + enc
			}
			back, err := Parse(enc)
			if err != nil || !back.Equal(h) {
				t.Fatalf("%q parsed to %v; its %v form %q gives %v, %v", s, h, e, enc, back, err)
			}
		}
	})
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}
