package forge

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, fetcher, archive, git string
		tag                       bool
	}{
		{"NixOS/nix", "fetchFromGitHub", "https://github.com/NixOS/nix/archive/v1.tar.gz", "https://github.com/NixOS/nix.git", false},
		{"https://github.com/BurntSushi/ripgrep", "fetchFromGitHub", "https://github.com/BurntSushi/ripgrep/archive/refs/tags/v1.tar.gz", "https://github.com/BurntSushi/ripgrep.git", true},
		{"https://github.com/BurntSushi/ripgrep.git", "fetchFromGitHub", "https://github.com/BurntSushi/ripgrep/archive/v1.tar.gz", "https://github.com/BurntSushi/ripgrep.git", false},
		{"https://github.com/o/r/tree/main/sub", "fetchFromGitHub", "https://github.com/o/r/archive/v1.tar.gz", "https://github.com/o/r.git", false},
		{"github:o/r", "fetchFromGitHub", "https://github.com/o/r/archive/v1.tar.gz", "https://github.com/o/r.git", false},
		{"https://gitlab.com/g/sub/r.js/-/tree/main", "fetchFromGitLab", "https://gitlab.com/api/v4/projects/g%2Fsub%2Fr%2Ejs/repository/archive.tar.gz?sha=refs%2Ftags%2Fv1", "https://gitlab.com/g/sub/r.js.git", true},
		{"gitlab:o/r", "fetchFromGitLab", "https://gitlab.com/api/v4/projects/o%2Fr/repository/archive.tar.gz?sha=v1", "https://gitlab.com/o/r.git", false},
		{"https://codeberg.org/o/r", "fetchFromGitea", "https://codeberg.org/o/r/archive/refs/tags/v1.tar.gz", "https://codeberg.org/o/r.git", true},
		{"https://git.sr.ht/~sircmpwn/hare", "fetchFromSourcehut", "https://git.sr.ht/~sircmpwn/hare/archive/v1.tar.gz", "https://git.sr.ht/~sircmpwn/hare", true},
		{"sourcehut:sircmpwn/hare", "fetchFromSourcehut", "https://git.sr.ht/~sircmpwn/hare/archive/v1.tar.gz", "https://git.sr.ht/~sircmpwn/hare", false},
	} {
		r, ok := Parse(tc.in)
		if !ok {
			t.Errorf("Parse(%q): not recognised", tc.in)
			continue
		}
		if got := r.Fetcher(); got != tc.fetcher {
			t.Errorf("%s: fetcher %s, want %s", tc.in, got, tc.fetcher)
		}
		if got := r.ArchiveURL("v1", tc.tag); got != tc.archive {
			t.Errorf("%s: archive %s, want %s", tc.in, got, tc.archive)
		}
		if got := r.GitURL(); got != tc.git {
			t.Errorf("%s: git %s, want %s", tc.in, got, tc.git)
		}
	}
	for in, ref := range map[string]string{
		"https://github.com/o/r/tree/v1.2":         "v1.2",
		"https://github.com/o/r/commit/abc":        "abc",
		"https://github.com/o/r/releases/tag/v3":   "v3",
		"https://gitlab.com/g/r/-/tags/v4":         "v4",
		"https://codeberg.org/o/r":                 "",
		"https://github.com/o/r/tree/main/sub/dir": "",
	} {
		if r, ok := Parse(in); !ok || r.Ref != ref {
			t.Errorf("Parse(%q): %+v %v, want Ref %q", in, r, ok, ref)
		}
	}
	for _, in := range []string{"", "./dir", "https://github.com/o/r/archive/refs/tags/v1.tar.gz", "https://github.com/o/r/releases/download/v1/r-1.zip", "https://gitlab.com/o/r/-/archive/v1/r-v1.tar.bz2", "/abs/dir", "a/b/c", "https://example.org/o/r", "http://github.com/o/r", "crate:serde@1.0.0", "https://github.com/o", "git@github.com:o/r.git", "o/..", "https://github.com/o/r?x=1"} {
		if r, ok := Parse(in); ok {
			t.Errorf("Parse(%q) = %+v, want not recognised", in, r)
		}
	}
}
