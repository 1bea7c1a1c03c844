package git

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// objectReader reads objects of a repository through one git cat-file
// --batch and checks that each one's bytes, as git reads them, hash to its
// id: sha1 (or sha256 for 64-digit ids) of "TYPE SIZE\x00" and the content,
// as git names objects. It serves every read of one verification, so that a
// tree of any size costs one git process.
type objectReader struct {
	ctx    context.Context
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	stdin  io.WriteCloser
	stdout io.ReadCloser
	r      *bufio.Reader
	h1     hash.Hash
	h256   hash.Hash
}

// readObjects starts git cat-file --batch in the bare repository repo;
// close ends it. The pipes are git's own (not copied by goroutines of
// os/exec), so that a git that exits early ends reads and writes at once.
func (s *session) readObjects(ctx context.Context, repo string) (*objectReader, error) {
	cmd, stderr, err := s.r.command(ctx, repo, repo, "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &startError{fmt.Errorf("running git cat-file: %w", err)}
	}
	return &objectReader{ctx: ctx, cmd: cmd, stderr: stderr, stdin: stdin, stdout: stdout,
		r: bufio.NewReaderSize(stdout, 64<<10), h1: sha1.New(), h256: sha256.New()}, nil
}

// request asks for ids; their objects are read, in that order, by next. It
// does not wait for git to take them: git writes each object as it reads
// its id, and only the reader of those objects lets it go on.
func (o *objectReader) request(ids []string) {
	var b bytes.Buffer
	for _, id := range ids {
		b.WriteString(id)
		b.WriteByte('\n')
	}
	go o.stdin.Write(b.Bytes()) // fails only when git is gone, which next reports
}

// nextTo reads the object id, which must be the next one requested,
// checks its bytes against id and returns its type and, if keep, its
// content; it copies the bytes to dst, when not nil, as they are read: a
// caller that writes them must drop them unless err is nil.
func (o *objectReader) nextTo(id string, keep bool, dst io.Writer) (typ string, content []byte, err error) {
	line, err := o.r.ReadString('\n')
	if err != nil {
		return "", nil, io.ErrUnexpectedEOF
	}
	f := strings.Fields(line)
	if len(f) == 2 && f[0] == id && f[1] == "missing" {
		return "", nil, &damagedError{&missingError{id}}
	}
	if len(f) != 3 || f[0] != id {
		return "", nil, fmt.Errorf("git cat-file --batch: unexpected line %q for object %s", line, id)
	}
	size, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || size < 0 {
		return "", nil, fmt.Errorf("git cat-file --batch: unexpected line %q", line)
	}
	h := o.h1
	if len(id) == 2*sha256.Size {
		h = o.h256
	}
	content, err = readObject(h, id, f[1], size, o.r, keep, dst)
	if err != nil {
		return "", nil, err
	}
	if b, err := o.r.ReadByte(); err != nil || b != '\n' {
		return "", nil, io.ErrUnexpectedEOF
	}
	return f[1], content, nil
}

// readObject copies the size bytes of an object of type typ from r to dst
// (when not nil) and returns them if keep; with h, they must hash to id.
// Too few bytes are io.ErrUnexpectedEOF; bytes that hash to another id
// are a *damagedError.
func readObject(h hash.Hash, id, typ string, size int64, r io.Reader, keep bool, dst io.Writer) ([]byte, error) {
	startObject(h, typ, size)
	var w io.Writer = h
	var buf bytes.Buffer
	switch {
	case keep && dst != nil:
		w = io.MultiWriter(h, &buf, dst)
	case keep:
		w = io.MultiWriter(h, &buf)
	case dst != nil:
		w = io.MultiWriter(h, dst)
	}
	if _, err := io.CopyN(w, r, size); err != nil {
		return nil, io.ErrUnexpectedEOF
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != id {
		return nil, &damagedError{fmt.Errorf("object %s is damaged: its bytes hash to %s", id, sum)}
	}
	return buf.Bytes(), nil
}

// startObject writes to h what precedes an object's content in the bytes
// git names it by (the sha1 or sha256 of "TYPE SIZE\x00" and the content).
func startObject(h hash.Hash, typ string, size int64) {
	h.Reset()
	fmt.Fprintf(h, "%s %d\x00", typ, size)
}

// missingError is a missing object.
type missingError struct{ id string }

func (e *missingError) Error() string { return "object " + e.id + " is missing" }

// notCommitError says that the id asked for names (through tags) an
// object that is not a commit: the caller's mistake, not the repository's.
type notCommitError struct{ id, typ string }

func (e *notCommitError) Error() string { return e.id + " is a " + e.typ + ", not a commit" }

// errAbsent is verify's error for a commit that is not in the repository
// at all: not damage, just not fetched yet.
var errAbsent = errors.New("not in the repository")

// close ends git cat-file and returns err, or git's error where that says
// more: git's words for a corrupt object, when reading stopped short.
func (o *objectReader) close(err error) error {
	o.stdin.Close()
	o.stdout.Close() // git, if still writing, gets EPIPE
	if gitErr := o.cmd.Wait(); gitErr != nil && (err == nil || errors.Is(err, io.ErrUnexpectedEOF)) {
		return failure(o.ctx, "cat-file", o.stderr, gitErr)
	}
	return err
}

// maxTagChain bounds how many annotated tags may name one another before
// the commit.
const maxTagChain = 16

// verify checks that repo holds commit (or the annotated tag that names
// it) and every object of its tree intact, each object's bytes hashing to
// its id, and returns the tree's gitlinks (submodules) in path order. It
// walks the tree itself, level by level, through one git cat-file --batch:
// the objects it reads are those `git rev-list --objects --no-walk commit`
// lists, the tag's own bytes included. With a treeWriter it also writes
// the tree out (see treeWriter), from the bytes it checks; what it wrote
// before failing is removed by the next verify, or by reset.
func (s *session) verify(ctx context.Context, repo, commit string, tw *treeWriter) (links []submodule, err error) {
	if err := tw.reset(); err != nil {
		return nil, err
	}
	o, err := s.readObjects(ctx, repo)
	if err != nil {
		return nil, err
	}
	defer func() { err = o.close(err) }()
	return walkCommit(o, commit, tw)
}

// verifyPack is verify with the objects read from pack, just stored by
// storePack, instead of through git: a fresh fetch's objects are read
// back from where they were written, each one's bytes hashed again, with
// no git process. An object the pack lacks is a *missingError, though
// other packs of the repository may hold it.
func verifyPack(ctx context.Context, pack *storedPack, commit string, tw *treeWriter) (links []submodule, err error) {
	if err := tw.reset(); err != nil {
		return nil, err
	}
	p, err := openPack(ctx, pack)
	if err != nil {
		return nil, err
	}
	defer func() { err = p.close(err) }()
	return walkCommit(p, commit, tw)
}

// objectSource serves the reads of one verification: request names the
// objects about to be read, nextTo reads them in that order (see
// objectReader), close ends it and returns its error or a better one.
type objectSource interface {
	request(ids []string)
	nextTo(id string, keep bool, dst io.Writer) (typ string, content []byte, err error)
	close(err error) error
}

// walkCommit is verify's walk, through o.
func walkCommit(o objectSource, commit string, tw *treeWriter) (links []submodule, err error) {
	id := commit
	var tree string
	for depth := 0; tree == ""; depth++ {
		if depth == maxTagChain {
			return nil, fmt.Errorf("%s: more than %d tags before a commit", commit, maxTagChain)
		}
		o.request([]string{id})
		typ, content, err := o.nextTo(id, true, nil)
		if me := (*missingError)(nil); depth == 0 && errors.As(err, &me) {
			return nil, errAbsent
		}
		if err != nil {
			return nil, err
		}
		switch typ {
		case "tag":
			id = headerField(content, "object")
		case "commit":
			tree = headerField(content, "tree")
		default:
			return nil, &notCommitError{id, typ}
		}
		if id == "" || typ == "commit" && tree == "" {
			return nil, fmt.Errorf("%s: malformed %s object", commit, typ)
		}
	}
	type entry struct{ id, path, typ, mode string }
	level := []entry{{tree, "", "tree", ""}}
	seen := map[string]bool{tree: true}
	for len(level) > 0 {
		ids := make([]string, len(level))
		for i, e := range level {
			ids[i] = e.id
		}
		o.request(ids)
		var next []entry
		for _, e := range level {
			var typ string
			var content []byte
			if e.typ == "blob" && tw.writing() {
				err = tw.writeBlob(e.path, e.mode, func(keep bool, dst io.Writer) ([]byte, error) {
					typ, content, err = o.nextTo(e.id, keep, dst)
					if err == nil && typ != "blob" {
						err = fmt.Errorf("%s (%s) is a %s, its tree says blob", e.id, e.path, typ)
					}
					return content, err
				})
			} else {
				typ, content, err = o.nextTo(e.id, e.typ == "tree", nil)
			}
			if err != nil {
				return nil, err
			}
			if typ != e.typ {
				return nil, fmt.Errorf("%s (%s) is a %s, its tree says %s", e.id, e.path, typ, e.typ)
			}
			if typ != "tree" {
				continue
			}
			tw.tree()
			err = treeEntries(content, len(e.id)/2, func(mode, name, child string) {
				tw.entry(name, mode)
				p := name
				if e.path != "" {
					p = e.path + "/" + name
				}
				// Writing, every path is read: a blob or tree met twice
				// is written twice.
				again := seen[child] && !tw.writing()
				seen[child] = true
				switch mode {
				case "160000":
					links = append(links, submodule{path: p, commit: child})
				case "40000", "040000":
					if !again {
						next = append(next, entry{child, p, "tree", mode})
					}
				default:
					if !again {
						next = append(next, entry{child, p, "blob", mode})
					}
				}
			})
			if err != nil {
				return nil, fmt.Errorf("tree %s (%s): %w", e.id, e.path, err)
			}
		}
		level = next
	}
	slices.SortFunc(links, func(a, b submodule) int { return strings.Compare(a.path, b.path) })
	return links, nil
}

// readBlob returns the content of the blob id in repo, its bytes checked
// against id.
func (s *session) readBlob(ctx context.Context, repo, id string) (data []byte, err error) {
	o, err := s.readObjects(ctx, repo)
	if err != nil {
		return nil, err
	}
	defer func() { err = o.close(err) }()
	o.request([]string{id})
	typ, data, err := o.nextTo(id, true, nil)
	if err == nil && typ != "blob" {
		err = fmt.Errorf("%s is a %s, not a file", id, typ)
	}
	return data, err
}

// headerField returns the value of the header line "key value" of a
// commit or tag object, or "".
func headerField(content []byte, key string) string {
	for line := range strings.Lines(string(content)) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break // end of the header
		}
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return v
		}
	}
	return ""
}

// treeEntries calls fn for each entry of a tree object: its mode (octal
// digits, as git writes them), name and object id (hex); ids are idLen
// bytes.
func treeEntries(tree []byte, idLen int, fn func(mode, name, id string)) error {
	for len(tree) > 0 {
		sp := bytes.IndexByte(tree, ' ')
		nul := bytes.IndexByte(tree, 0)
		if sp <= 0 || nul < sp || len(tree) < nul+1+idLen {
			return errors.New("malformed tree entry")
		}
		fn(string(tree[:sp]), string(tree[sp+1:nul]), hex.EncodeToString(tree[nul+1:nul+1+idLen]))
		tree = tree[nul+1+idLen:]
	}
	return nil
}
