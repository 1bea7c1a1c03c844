// Package forge maps repositories on GitHub, GitLab, Gitea (Codeberg) and
// sourcehut to what nixpkgs' fetchFromGitHub, fetchFromGitLab,
// fetchFromGitea and fetchFromSourcehut download: the archive URL of a
// revision (fetched with fetchzip) and the git URL (fetchgit, with
// fetchSubmodules). It does no I/O: resolving a tag or branch and fetching
// are the caller's.
package forge

import (
	"fmt"
	"net/url"
	"strings"
)

// Kind is a forge software.
type Kind int

const (
	GitHub Kind = iota
	GitLab
	Gitea
	Sourcehut
)

// defaults are the forges recognised by domain, and the domain each
// fetcher assumes.
var defaults = map[string]Kind{
	"github.com":   GitHub,
	"gitlab.com":   GitLab,
	"codeberg.org": Gitea,
	"git.sr.ht":    Sourcehut,
}

// Repo is one repository on a forge.
type Repo struct {
	Kind   Kind
	Domain string // github.com, gitlab.com, codeberg.org, git.sr.ht, …
	Group  string // GitLab: the groups above Owner ("" if none)
	Owner  string // sourcehut: with its "~"
	Repo   string
	// Ref is the revision a web URL names, if any: X of /tree/X,
	// /commit/X, /releases/tag/X (GitLab: /-/tree/X, /-/commit/X, /-/tags/X).
	Ref string
}

// archiveExts are the endings of files that are archives, not repositories,
// even on a forge's domain (release assets, /archive/ URLs).
var archiveExts = []string{".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar.zst", ".tar", ".zip", ".crate"}

// Parse recognises a repository: an https URL on one of the forges above
// (a trailing ".git" is ignored, a revision in "/tree/X" and the like is
// kept in Ref; a URL ending like an archive is not a repository), "github:OWNER/REPO",
// "gitlab:OWNER/REPO", "codeberg:OWNER/REPO", "sourcehut:~OWNER/REPO", or
// "OWNER/REPO" for GitHub. ok is false for anything else.
func Parse(s string) (r Repo, ok bool) {
	if prefix, rest, found := strings.Cut(s, ":"); found && !strings.HasPrefix(rest, "//") {
		domain := map[string]string{"github": "github.com", "gitlab": "gitlab.com", "codeberg": "codeberg.org", "sourcehut": "git.sr.ht", "sr.ht": "git.sr.ht"}[prefix]
		if domain == "" {
			return Repo{}, false
		}
		return fromPath(defaults[domain], domain, rest)
	}
	if !strings.Contains(s, ":") && strings.Count(s, "/") == 1 && !strings.HasPrefix(s, ".") && !strings.HasPrefix(s, "/") {
		return fromPath(GitHub, "github.com", s)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" {
		return Repo{}, false
	}
	host := strings.ToLower(u.Host)
	if host == "www.github.com" {
		host = "github.com"
	}
	kind, known := defaults[host]
	if !known {
		return Repo{}, false
	}
	p := strings.Trim(u.Path, "/")
	for _, ext := range archiveExts {
		if strings.HasSuffix(p, ext) {
			return Repo{}, false
		}
	}
	var rest []string                         // what follows the repository's path
	if i := strings.Index(p, "/-/"); i >= 0 { // GitLab: /group/repo/-/tree/…
		p, rest = p[:i], strings.Split(p[i+3:], "/")
	}
	parts := strings.Split(p, "/")
	if kind != GitLab && len(parts) > 2 {
		parts, rest = parts[:2], parts[2:] // /owner/repo/tree/…, /owner/repo/commit/…
	}
	r, ok = fromPath(kind, host, strings.Join(parts, "/"))
	if len(rest) == 2 && (rest[0] == "tree" || rest[0] == "commit" || rest[0] == "tags") {
		r.Ref = rest[1]
	} else if len(rest) == 3 && rest[0] == "releases" && rest[1] == "tag" {
		r.Ref = rest[2]
	}
	return r, ok
}

func fromPath(kind Kind, domain, p string) (Repo, bool) {
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	parts := strings.Split(p, "/")
	if len(parts) < 2 || (kind != GitLab && len(parts) != 2) {
		return Repo{}, false
	}
	for _, c := range parts {
		if c == "" || c == "." || c == ".." || strings.ContainsAny(c, "?#%\\ \t\n") {
			return Repo{}, false
		}
	}
	n := len(parts)
	r := Repo{Kind: kind, Domain: domain, Owner: parts[n-2], Repo: parts[n-1], Group: strings.Join(parts[:n-2], "/")}
	if kind == Sourcehut && !strings.HasPrefix(r.Owner, "~") {
		r.Owner = "~" + r.Owner
	}
	return r, true
}

// Fetcher is the nixpkgs fetcher's name.
func (r Repo) Fetcher() string {
	return [...]string{"fetchFromGitHub", "fetchFromGitLab", "fetchFromGitea", "fetchFromSourcehut"}[r.Kind]
}

// slug is the repository's path on its domain.
func (r Repo) slug() string {
	if r.Group != "" {
		return r.Group + "/" + r.Owner + "/" + r.Repo
	}
	return r.Owner + "/" + r.Repo
}

// GitURL is the repository's git URL (fetchgit's url with fetchSubmodules).
func (r Repo) GitURL() string {
	if r.Kind == Sourcehut {
		return "https://" + r.Domain + "/" + r.slug() // fetchFromSourcehut: no .git
	}
	return "https://" + r.Domain + "/" + r.slug() + ".git"
}

// ArchiveURL is the URL fetchzip downloads for rev, a commit, or for the tag
// rev when tag is set, exactly as the fetcher builds it.
func (r Repo) ArchiveURL(rev string, tag bool) string {
	revWithTag := rev
	if tag && r.Kind != Sourcehut {
		revWithTag = "refs/tags/" + rev // fetchgit.getRevWithTag
	}
	switch r.Kind {
	case GitLab:
		slug := strings.NewReplacer(".", "%2E", "/", "%2F").Replace(r.slug())
		esc := strings.NewReplacer("+", "%2B", "%", "%25", "/", "%2F").Replace(revWithTag)
		return fmt.Sprintf("https://%s/api/v4/projects/%s/repository/archive.tar.gz?sha=%s", r.Domain, slug, esc)
	default: // GitHub and Gitea (fetchFromGitea is fetchFromGitHub with githubBase), sourcehut
		return fmt.Sprintf("https://%s/%s/archive/%s.tar.gz", r.Domain, r.slug(), revWithTag)
	}
}

// Args are the fetcher's arguments naming the repository, in the order
// nixpkgs documents them; a domain is given only where the fetcher has no
// default for it.
func (r Repo) Args() [][2]string {
	var a [][2]string
	switch {
	case r.Kind == Gitea:
		a = append(a, [2]string{"domain", r.Domain})
	case r.Domain != map[Kind]string{GitHub: "github.com", GitLab: "gitlab.com", Sourcehut: "git.sr.ht"}[r.Kind]:
		if r.Kind == GitHub {
			a = append(a, [2]string{"githubBase", r.Domain})
		} else {
			a = append(a, [2]string{"domain", strings.TrimPrefix(r.Domain, "git.")})
		}
	}
	if r.Group != "" {
		a = append(a, [2]string{"group", r.Group})
	}
	return append(a, [2]string{"owner", r.Owner}, [2]string{"repo", r.Repo})
}
