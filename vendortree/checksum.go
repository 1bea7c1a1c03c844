package vendortree

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"
)

// ChecksumFile is the name of a vendored crate's checksum file.
const ChecksumFile = ".cargo-checksum.json"

// Checksum is a vendored crate's .cargo-checksum.json: what cargo checks
// before building from the directory.
type Checksum struct {
	// Files maps each file of the crate ('/'-separated path) to its sha256
	// (hex). The nixpkgs layout lists none.
	Files map[string]string
	// Package is the sha256 of the .crate file (the lock's checksum); ""
	// for git crates (null, or absent in the nixpkgs layout).
	Package string
}

// ParseChecksum reads a .cargo-checksum.json; it must have a "files"
// object.
func ParseChecksum(data []byte) (*Checksum, error) {
	var raw struct {
		Files   map[string]string `json:"files"`
		Package *string           `json:"package"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", ChecksumFile, err)
	}
	if raw.Files == nil {
		return nil, fmt.Errorf(`%s: no "files" object`, ChecksumFile)
	}
	c := &Checksum{Files: raw.Files}
	if raw.Package != nil {
		c.Package = *raw.Package
	}
	return c, nil
}

// Marshal renders c as the layout k writes it, byte for byte: Cargo as
// cargo vendor does, Nixpkgs as nixpkgs' fetch-cargo-vendor-util.py does
// (Files is not written: that layout lists none).
func (c *Checksum) Marshal(k Kind) []byte {
	if k == Cargo {
		return cargoChecksum(c.Files, c.Package)
	}
	return nixpkgsChecksum(c.Package)
}

// cargoChecksum renders a cargo-layout .cargo-checksum.json exactly as cargo
// vendor (serde_json compact writer) does: {"files":{...},"package":...}
// with keys sorted bytewise, no whitespace, no trailing newline. pkg == ""
// writes "package":null (git crates).
//
// encoding/json cannot be used: it escapes <, >, & (unless told not to) and
// always escapes U+2028/U+2029, which serde_json writes raw.
func cargoChecksum(files map[string]string, pkg string) []byte {
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	sort.Strings(keys) // bytewise, like Rust's BTreeMap<String, _>
	// cargo writes every key with '\\' turned into '/' (for Windows paths),
	// even on Unix where a backslash is an ordinary file name byte (cargo
	// 1.95 then fails to build from its own tree: the listed path does not
	// exist). We write what cargo vendor writes.
	var b bytes.Buffer
	b.WriteString(`{"files":{`)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, strings.ReplaceAll(k, `\`, "/"))
		b.WriteByte(':')
		writeJSONString(&b, files[k])
	}
	b.WriteString(`},"package":`)
	if pkg == "" {
		b.WriteString("null")
	} else {
		writeJSONString(&b, pkg)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// nixpkgsChecksum renders the .cargo-checksum.json nixpkgs'
// fetch-cargo-vendor-util.py writes with Python's json.dump (default
// separators ", " and ": "): {"files": {}, "package": "HEX"} for registry
// crates, {"files": {}} for git crates (pkg == "").
func nixpkgsChecksum(pkg string) []byte {
	if pkg == "" {
		return []byte(`{"files": {}}`)
	}
	var b bytes.Buffer
	b.WriteString(`{"files": {}, "package": `)
	writeJSONString(&b, pkg) // a lowercase hex checksum: no escaping happens
	b.WriteByte('}')
	return b.Bytes()
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s as serde_json does: only '"', '\\' and control
// characters below U+0020 are escaped (\b \t \n \f \r short forms, else
// \u00XX with lowercase hex); everything else, 0x7f and U+2028 included, is
// written raw. Invalid UTF-8 cannot occur in a Rust String; cargo would have
// failed on such a path, so we replace it by U+FFFD like a lossy conversion.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString(s[start:i])
				b.WriteString("\ufffd")
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// sha256Of is the sha256 (hex) of b, as a checksum file lists it.
func sha256Of(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sha256Reader is the sha256 (hex) of what r yields: the one way a file's
// content is hashed for a checksum file, whether written or checked.
func sha256Reader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sha256File is sha256Reader of the file at path.
func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return sha256Reader(f)
}
