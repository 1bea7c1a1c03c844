package lockfile

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	const (
		sumA = "1111111111111111111111111111111111111111111111111111111111111111"
		sumB = "2222222222222222222222222222222222222222222222222222222222222222"
		shaA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		shaB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	)
	pkg := func(name, version, source, sum string) string {
		s := "[[package]]\nname = \"" + name + "\"\nversion = \"" + version + "\"\n"
		if source != "" {
			s += "source = \"" + source + "\"\n"
		}
		if sum != "" {
			s += "checksum = \"" + sum + "\"\n"
		}
		return s + "\n"
	}
	git := "git+https://github.com/o/r?branch=main#"
	tests := []struct {
		name     string
		old, new string
		want     []string
	}{
		{"same", pkg("a", "1.0.0", CratesIORegistry, sumA), pkg("a", "1.0.0", CratesIORegistry, sumA), nil},
		{"order and dependencies do not matter",
			pkg("a", "1.0.0", "", "") + pkg("b", "1.0.0", CratesIORegistry, sumA),
			pkg("b", "1.0.0", CratesIORegistry, sumA) + "dependencies = [\"a\"]\n" + pkg("a", "1.0.0", "", ""), nil},
		{"version bump", pkg("serde", "1.0.196", CratesIORegistry, sumA), pkg("serde", "1.0.197", CratesIORegistry, sumB),
			[]string{"~ serde 1.0.196 -> 1.0.197 (checksum 11111111… -> 22222222…)"}},
		{"local version bump", pkg("app", "0.1.0", "", ""), pkg("app", "0.2.0", "", ""), []string{"~ app 0.1.0 -> 0.2.0"}},
		{"checksum change", pkg("serde", "1.0.197", CratesIORegistry, sumA), pkg("serde", "1.0.197", CratesIORegistry, sumB),
			[]string{"~ serde 1.0.197 (checksum 11111111… -> 22222222…)"}},
		{"checksum added", pkg("serde", "1.0.197", CratesIORegistry, ""), pkg("serde", "1.0.197", CratesIORegistry, sumB),
			[]string{"~ serde 1.0.197 (checksum none -> 22222222…)"}},
		{"git commit change", pkg("g", "0.1.0", git+shaA, ""), pkg("g", "0.1.0", git+shaB, ""),
			[]string{"~ g 0.1.0 (commit aaaaaaaa… -> bbbbbbbb…)"}},
		{"added and removed", pkg("a", "1.0.0", CratesIORegistry, sumA) + pkg("bar", "0.1.0", "", ""),
			pkg("a", "1.0.0", CratesIORegistry, sumA) + pkg("foo", "1.0.0", CratesIOSparse, sumB),
			[]string{"- bar 0.1.0", "+ foo 1.0.0 (sparse+https://index.crates.io/)"}},
		{"source change is remove and add", pkg("a", "1.0.0", CratesIORegistry, sumA), pkg("a", "1.0.0", CratesIOSparse, sumA),
			[]string{"- a 1.0.0 (" + CratesIORegistry + ")", "+ a 1.0.0 (" + CratesIOSparse + ")"}},
		{"selector change is remove and add", pkg("g", "0.1.0", git+shaA, ""), pkg("g", "0.1.0", "git+https://github.com/o/r?tag=v1#"+shaA, ""),
			[]string{"- g 0.1.0 (" + git + shaA + ")", "+ g 0.1.0 (git+https://github.com/o/r?tag=v1#" + shaA + ")"}},
		{"two versions to one is not a bump",
			pkg("a", "1.0.0", CratesIORegistry, sumA) + pkg("a", "2.0.0", CratesIORegistry, sumA),
			pkg("a", "3.0.0", CratesIORegistry, sumA),
			[]string{"- a 1.0.0 (" + CratesIORegistry + ")", "- a 2.0.0 (" + CratesIORegistry + ")", "+ a 3.0.0 (" + CratesIORegistry + ")"}},
		{"one of two versions bumped",
			pkg("a", "1.0.0", CratesIORegistry, sumA) + pkg("a", "2.0.0", CratesIORegistry, sumA),
			pkg("a", "1.0.0", CratesIORegistry, sumA) + pkg("a", "2.1.0", CratesIORegistry, sumA),
			[]string{"~ a 2.0.0 -> 2.1.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, err := Parse("old", []byte("version = 4\n"+tt.old))
			if err != nil {
				t.Fatal(err)
			}
			new, err := Parse("new", []byte("version = 4\n"+tt.new))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range Diff(old, new) {
				got = append(got, c.String())
				switch {
				case c.Kind == "added" && (c.Old != nil || c.New == nil),
					c.Kind == "removed" && (c.Old == nil || c.New != nil),
					c.Kind == "changed" && (c.Old == nil || c.New == nil):
					t.Errorf("%s: Old %v, New %v", c.Kind, c.Old, c.New)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if back := Diff(new, old); len(back) != len(got) {
				t.Errorf("reverse diff has %d changes, forward %d", len(back), len(got))
			}
		})
	}
}
