package vendortree

import (
	"strconv"
	"strings"
)

// compareVersions orders two crate versions as the semver crate's Ord
// does (cargo vendor picks the greatest for the unversioned directory):
// major, minor, patch numerically; a pre-release sorts before its release
// and pre-release identifiers compare numerically when both are numbers,
// numbers before words, else bytewise, a shorter prefix first; build
// metadata last, compared the same way. Unparseable parts compare bytewise.
func compareVersions(a, b string) int {
	ac, apre, abuild := splitVersion(a)
	bc, bpre, bbuild := splitVersion(b)
	for i := 0; i < 3; i++ {
		if c := compareIdent(ac[i], bc[i]); c != 0 {
			return c
		}
	}
	switch {
	case apre == "" && bpre != "":
		return 1
	case apre != "" && bpre == "":
		return -1
	}
	if c := compareDotted(apre, bpre); c != 0 {
		return c
	}
	return compareDotted(abuild, bbuild)
}

func splitVersion(v string) (core [3]string, pre, build string) {
	v, build, _ = strings.Cut(v, "+")
	v, pre, _ = strings.Cut(v, "-")
	parts := strings.SplitN(v, ".", 3)
	copy(core[:], parts)
	return core, pre, build
}

func compareDotted(a, b string) int {
	if a == b {
		return 0
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	if a == "" {
		as = nil
	}
	if b == "" {
		bs = nil
	}
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := compareIdent(as[i], bs[i]); c != 0 {
			return c
		}
	}
	return len(as) - len(bs)
}

func compareIdent(a, b string) int {
	an, aerr := strconv.ParseUint(a, 10, 64)
	bn, berr := strconv.ParseUint(b, 10, 64)
	switch {
	case aerr == nil && berr == nil:
		switch {
		case an < bn:
			return -1
		case an > bn:
			return 1
		}
		return 0
	case aerr == nil:
		return -1
	case berr == nil:
		return 1
	}
	return strings.Compare(a, b)
}
