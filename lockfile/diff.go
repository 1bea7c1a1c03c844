package lockfile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Change is one difference between two lock files.
type Change struct {
	Kind string   // "added", "removed" or "changed"
	Old  *Package // nil for "added"
	New  *Package // nil for "removed"
}

// String renders the change for people, one line:
//
//	added:   + foo 1.0.0 (registry+https://github.com/rust-lang/crates.io-index)
//	removed: - bar 0.1.0
//	changed: ~ serde 1.0.196 -> 1.0.197
//	         ~ serde 1.0.197 (checksum 0123abcd… -> 4567ef01…)
//	         ~ gdep 0.1.0 (commit aee9f83e… -> 0bd1f0c2…)
//
// Added and removed packages show their raw source, local ones none.
func (c Change) String() string {
	switch c.Kind {
	case "added":
		return "+ " + describe(c.New)
	case "removed":
		return "- " + describe(c.Old)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "~ %s %s", c.Old.Name, c.Old.Version)
	if c.Old.Version != c.New.Version {
		fmt.Fprintf(&b, " -> %s", c.New.Version)
	}
	var what []string
	if c.Old.Source.Raw != c.New.Source.Raw && c.Old.Source.Commit != c.New.Source.Commit {
		what = append(what, fmt.Sprintf("commit %s -> %s", short(c.Old.Source.Commit), short(c.New.Source.Commit)))
	}
	if c.Old.Checksum != c.New.Checksum {
		what = append(what, fmt.Sprintf("checksum %s -> %s", short(c.Old.Checksum), short(c.New.Checksum)))
	}
	if len(what) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(what, ", "))
	}
	return b.String()
}

func describe(p *Package) string {
	if p.Source.Raw == "" {
		return p.Name + " " + p.Version
	}
	return fmt.Sprintf("%s %s (%s)", p.Name, p.Version, p.Source.Raw)
}

func short(h string) string {
	if h == "" {
		return "none"
	}
	if len(h) > 8 {
		return h[:8] + "…"
	}
	return h
}

// origin is where a package comes from, without the locked commit: the raw
// source of registries, URL and selector of git sources.
func origin(s Source) string {
	if s.Kind == Git {
		raw, _, _ := strings.Cut(s.Raw, "#")
		return raw
	}
	return s.Raw
}

// Diff lists how new differs from old, the way the check command reports it:
// by name, version, source and checksum (dependency lists are not compared).
//
// Packages are matched in three rounds. Entries equal in name, version,
// source and checksum are unchanged. Then entries with the same name, version
// and origin (the source without a git commit) are "changed": a new checksum
// or a new git commit. Then, for a name and origin with exactly one unmatched
// entry on each side, the pair is "changed": a version bump, shown as
// "~ serde 1.0.196 -> 1.0.197". Whatever is left is "removed" or "added".
// Changes are sorted by name, version (the old one for a change), kind
// (removed, changed, added) and raw source.
func Diff(old, new *Lockfile) []Change {
	olds, news := pointers(old.Packages), pointers(new.Packages)
	var changes []Change
	changed := func(o, n *Package) { changes = append(changes, Change{Kind: "changed", Old: o, New: n}) }
	olds, news = match(olds, news, func(p *Package) string {
		return p.Name + "\x00" + p.Version + "\x00" + p.Source.Raw + "\x00" + p.Checksum
	}, func(o, n *Package) {})
	olds, news = match(olds, news, func(p *Package) string {
		return p.Name + "\x00" + p.Version + "\x00" + origin(p.Source)
	}, changed)
	// A version bump: exactly one unmatched entry on each side for the
	// name and origin.
	bump := func(p *Package) string { return p.Name + "\x00" + origin(p.Source) }
	n := make(map[string][2]int)
	for _, p := range olds {
		c := n[bump(p)]
		c[0]++
		n[bump(p)] = c
	}
	for _, p := range news {
		c := n[bump(p)]
		c[1]++
		n[bump(p)] = c
	}
	olds, news = match(olds, news, func(p *Package) string {
		if n[bump(p)] != [2]int{1, 1} {
			return "" // never equal to a real key: names are not empty
		}
		return bump(p)
	}, changed)
	for _, o := range olds {
		changes = append(changes, Change{Kind: "removed", Old: o})
	}
	for _, n := range news {
		changes = append(changes, Change{Kind: "added", New: n})
	}
	slices.SortStableFunc(changes, func(a, b Change) int {
		pa, pb := a.Old, b.Old
		if pa == nil {
			pa = a.New
		}
		if pb == nil {
			pb = b.New
		}
		return cmp.Or(
			strings.Compare(pa.Name, pb.Name),
			strings.Compare(pa.Version, pb.Version),
			strings.Compare(b.Kind, a.Kind), // removed before changed before added
			strings.Compare(pa.Source.Raw, pb.Source.Raw),
		)
	})
	return changes
}

func pointers(ps []Package) []*Package {
	out := make([]*Package, len(ps))
	for i := range ps {
		out[i] = &ps[i]
	}
	return out
}

// match pairs entries of olds and news with equal, non-empty keys (in order,
// first with first), reports each pair and returns the unpaired entries of
// both sides in their order.
func match(olds, news []*Package, key func(*Package) string, pair func(o, n *Package)) (restOld, restNew []*Package) {
	byKey := make(map[string][]int)
	for i, p := range news {
		if k := key(p); k != "" {
			byKey[k] = append(byKey[k], i)
		}
	}
	used := make([]bool, len(news))
	for _, o := range olds {
		k := key(o)
		if idx := byKey[k]; k != "" && len(idx) > 0 {
			byKey[k] = idx[1:]
			used[idx[0]] = true
			pair(o, news[idx[0]])
			continue
		}
		restOld = append(restOld, o)
	}
	for i, p := range news {
		if !used[i] {
			restNew = append(restNew, p)
		}
	}
	return restOld, restNew
}
