package git

import (
	"context"
	"errors"
	"strings"

	"github.com/cargohash/cargohash/lockfile"
)

// ErrRefNotFound: the repository has no tag, branch or ref of that name.
var ErrRefNotFound = errors.New("no such tag or branch")

// RefKind says what a name resolved to.
type RefKind int

const (
	Commit   RefKind = iota // a full commit id, taken as it is
	Tag                     // refs/tags/NAME
	Branch                  // refs/heads/NAME
	OtherRef                // a ref spelled in full (refs/…, HEAD)
)

// Resolve returns the commit that ref names in the repository at url, as
// fetchgit would pin it: a full commit id is returned unchanged (without
// asking the repository); otherwise `git ls-remote` is asked, and a tag is
// preferred over a branch of the same name, an annotated tag peeled to its
// commit.
func (f *Fetcher) Resolve(ctx context.Context, url, ref string) (commit string, kind RefKind, err error) {
	if lockfile.IsCommitID(ref) {
		return ref, Commit, nil
	}
	if err := ValidateURL(url); err != nil {
		return "", 0, &Error{URL: url, Commit: ref, Err: err}
	}
	if ref == "" || strings.HasPrefix(ref, "-") {
		return "", 0, &Error{URL: url, Commit: ref, Err: ErrRefNotFound}
	}
	if f.Offline {
		return "", 0, &Error{URL: url, Commit: ref, Err: errors.New("resolving a tag or branch needs the network (give a full commit id)")}
	}
	r, err := newRunner(f.Git, f.stallTimeout())
	if err != nil {
		return "", 0, &Error{URL: url, Commit: ref, Err: err}
	}
	defer r.close()
	out, err := r.run(ctx, "", "ls-remote", "--", url, ref)
	if err != nil {
		return "", 0, &Error{URL: url, Commit: ref, Err: err}
	}
	refs := map[string]string{}
	for line := range strings.Lines(string(out)) {
		id, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && lockfile.IsCommitID(id) {
			refs[name] = id
		}
	}
	for _, c := range []struct {
		name string
		kind RefKind
	}{
		{"refs/tags/" + ref + "^{}", Tag},
		{"refs/tags/" + ref, Tag},
		{"refs/heads/" + ref, Branch},
		{ref, OtherRef},
	} {
		if id, ok := refs[c.name]; ok {
			return id, c.kind, nil
		}
	}
	return "", 0, &Error{URL: url, Commit: ref, Err: ErrRefNotFound}
}
