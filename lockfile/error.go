package lockfile

import (
	"strconv"
	"strings"
)

// Error is a problem found in a Cargo.lock. It renders as
//
//	Cargo.lock:12: package serde@1.0.197: checksum "xyz" is not 64 lowercase hex digits
//
// leaving out the parts that are unknown (Line 0, Package "").
type Error struct {
	File    string // the name given to Parse, or the path Load read
	Line    int    // 1-based, 0 if unknown
	Package string // "NAME@VERSION", or just NAME when the version is missing
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Package != "" {
		b.WriteString("package ")
		b.WriteString(e.Package)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
