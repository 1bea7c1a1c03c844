package git

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// A pack as git sends and keeps it (gitformat-pack(5)): "PACK", version 2
// or 3, the object count, each object as a type-and-size header and zlib
// data (a delta names its base by offset or by id), and the SHA-1 of all of
// that. storePack writes one into a repository as git's index-pack does:
// the pack under its name and the version-2 index beside it, each object's
// id computed from its bytes (deltas applied), so that a pack whose bytes
// do not hash to its trailer, or whose deltas do not apply, is refused.

// Object types of a pack.
const (
	objCommit   = 1
	objTree     = 2
	objBlob     = 3
	objTag      = 4
	objOfsDelta = 6
	objRefDelta = 7
)

var typeNames = [...]string{objCommit: "commit", objTree: "tree", objBlob: "blob", objTag: "tag"}

// maxPackObjects bounds the object count a pack may claim (as 2^32 does in
// git's format; this only keeps a hostile count from sizing a slice).
const maxPackObjects = 1 << 26

// packEntry is one object of a pack.
type packEntry struct {
	offset int64 // of its header in the pack
	data   int64 // of its zlib stream
	end    int64 // of its zlib stream, exclusive
	typ    byte  // as in the pack: a delta is objOfsDelta or objRefDelta
	size   int64 // inflated size (of the delta data, for a delta)
	crc    uint32
	base   int64  // objOfsDelta: offset of its base
	baseID []byte // objRefDelta: id of its base
	baseAt int    // a delta: index of its base in the pack's objects, set by resolveDeltas
	kind   byte   // the object's type, deltas resolved
	id     []byte // sha1 of "kind size\x00" and the content
}

// delta reports whether e is a delta (by offset or by id).
func (e *packEntry) delta() bool { return e.typ == objOfsDelta || e.typ == objRefDelta }

// packInput reads a pack through one buffer and accounts for every byte
// consumed: into the pack's SHA-1, the current object's CRC-32 and the
// file it is copied to. It is a flate.Reader, so that zlib reads exactly
// one object's stream and no further.
type packInput struct {
	src      io.Reader
	buf      []byte
	pos, end int
	mark     int // buf[mark:pos] is consumed but not yet accounted for
	off      int64
	sum      hash.Hash
	crc      uint32
	out      io.Writer
	err      error // of out
	noSum    bool  // the trailer: copied, not summed
}

func (p *packInput) account() {
	b := p.buf[p.mark:p.pos]
	p.mark = p.pos
	if len(b) == 0 {
		return
	}
	if !p.noSum {
		p.sum.Write(b)
	}
	p.crc = crc32.Update(p.crc, crc32.IEEETable, b)
	if p.err == nil {
		_, p.err = p.out.Write(b)
	}
}

func (p *packInput) fill() error {
	p.account()
	for {
		n, err := p.src.Read(p.buf)
		p.pos, p.end, p.mark = 0, n, 0
		if n > 0 {
			return nil
		}
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		if err != nil {
			return err
		}
	}
}

func (p *packInput) ReadByte() (byte, error) {
	if p.pos == p.end {
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	b := p.buf[p.pos]
	p.pos++
	p.off++
	return b, nil
}

func (p *packInput) Read(q []byte) (int, error) {
	if len(q) == 0 {
		return 0, nil
	}
	if p.pos == p.end {
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(q, p.buf[p.pos:p.end])
	p.pos += n
	p.off += int64(n)
	return n, nil
}

// readPack reads a whole pack from r, copying its bytes to out, and
// returns its objects (ids of non-delta objects computed) and its trailer.
func readPack(r io.Reader, out io.Writer) ([]packEntry, []byte, error) {
	in := &packInput{src: r, buf: make([]byte, 64<<10), sum: sha1.New(), out: out}
	var hdr [12]byte
	if _, err := io.ReadFull(in, hdr[:]); err != nil {
		return nil, nil, fmt.Errorf("pack header: %w", err)
	}
	if string(hdr[:4]) != "PACK" {
		return nil, nil, errors.New("not a pack")
	}
	if v := binary.BigEndian.Uint32(hdr[4:]); v != 2 && v != 3 {
		return nil, nil, fmt.Errorf("pack version %d", v)
	}
	count := binary.BigEndian.Uint32(hdr[8:])
	if count > maxPackObjects {
		return nil, nil, fmt.Errorf("pack of %d objects", count)
	}
	objs := make([]packEntry, 0, min(count, 1<<16))
	var zr io.ReadCloser
	h := sha1.New()
	for i := range count {
		in.account()
		in.crc = 0
		e := packEntry{offset: in.off}
		c, err := in.ReadByte()
		if err != nil {
			return nil, nil, fmt.Errorf("object %d: %w", i, err)
		}
		e.typ = c >> 4 & 7
		e.size = int64(c & 15)
		for shift := 4; c&0x80 != 0; shift += 7 {
			if shift > 56 {
				return nil, nil, fmt.Errorf("object %d: size too large", i)
			}
			if c, err = in.ReadByte(); err != nil {
				return nil, nil, fmt.Errorf("object %d: %w", i, err)
			}
			e.size |= int64(c&0x7f) << shift
		}
		switch e.typ {
		case objCommit, objTree, objBlob, objTag:
			e.kind = e.typ
		case objOfsDelta:
			c, err := in.ReadByte()
			if err != nil {
				return nil, nil, fmt.Errorf("object %d: %w", i, err)
			}
			back := int64(c & 0x7f)
			for c&0x80 != 0 {
				if back >= 1<<55 {
					return nil, nil, fmt.Errorf("object %d: delta offset too large", i)
				}
				if c, err = in.ReadByte(); err != nil {
					return nil, nil, fmt.Errorf("object %d: %w", i, err)
				}
				back = (back+1)<<7 | int64(c&0x7f)
			}
			if back <= 0 || back > e.offset {
				return nil, nil, fmt.Errorf("object %d: delta base offset out of the pack", i)
			}
			e.base = e.offset - back
		case objRefDelta:
			e.baseID = make([]byte, sha1.Size)
			if _, err := io.ReadFull(in, e.baseID); err != nil {
				return nil, nil, fmt.Errorf("object %d: %w", i, err)
			}
		default:
			return nil, nil, fmt.Errorf("object %d: unknown type %d", i, e.typ)
		}
		e.data = in.off
		if zr == nil {
			if zr, err = zlib.NewReader(in); err != nil {
				return nil, nil, fmt.Errorf("object %d: %w", i, err)
			}
		} else if err := zr.(zlib.Resetter).Reset(in, nil); err != nil {
			return nil, nil, fmt.Errorf("object %d: %w", i, err)
		}
		var sink io.Writer = io.Discard
		if e.kind != 0 {
			startObject(h, typeNames[e.kind], e.size)
			sink = h
		}
		n, err := io.Copy(sink, zr)
		if err != nil {
			return nil, nil, fmt.Errorf("object %d: %w", i, err)
		}
		if n != e.size {
			return nil, nil, fmt.Errorf("object %d: %d bytes, its header says %d", i, n, e.size)
		}
		if e.kind != 0 {
			e.id = h.Sum(nil)
		}
		e.end = in.off
		in.account()
		e.crc = in.crc
		objs = append(objs, e)
	}
	in.account()
	want := in.sum.Sum(nil)
	in.noSum = true
	trailer := make([]byte, sha1.Size)
	if _, err := io.ReadFull(in, trailer); err != nil {
		return nil, nil, fmt.Errorf("pack trailer: %w", err)
	}
	in.account()
	if !bytes.Equal(trailer, want) {
		return nil, nil, errors.New("pack checksum mismatch")
	}
	if in.pos != in.end {
		return nil, nil, errors.New("data after the pack")
	}
	if in.err != nil {
		return nil, nil, in.err
	}
	return objs, trailer, nil
}

// maxDeltaDepth bounds a chain of deltas (git makes at most 50, and
// reads at most 4095 deep without complaint).
const maxDeltaDepth = 10000

// resolveDeltas sets kind and id of every delta in objs, whose pack is f,
// as git index-pack does: from each object that is not a delta, down the
// deltas made on it (by offset or, once its id is known, by id), each
// inflated once, with only the contents of the chain being walked in
// memory. A delta whose base is not in the pack is an error.
func resolveDeltas(f io.ReaderAt, objs []packEntry) error {
	byOffset := make(map[int64]int, len(objs))
	for i, e := range objs {
		byOffset[e.offset] = i
	}
	onOffset := map[int][]int{} // base → its deltas by offset
	onID := map[string][]int{}  // base id → deltas by id
	deltas := 0
	for i, e := range objs {
		switch e.typ {
		case objOfsDelta:
			b, ok := byOffset[e.base]
			if !ok {
				return fmt.Errorf("object at %d: no object at its base offset %d", e.offset, e.base)
			}
			onOffset[b] = append(onOffset[b], i)
			deltas++
		case objRefDelta:
			onID[string(e.baseID)] = append(onID[string(e.baseID)], i)
			deltas++
		}
	}
	if deltas == 0 {
		return nil
	}
	var zr io.ReadCloser
	inflate := func(e *packEntry) ([]byte, error) {
		sr := bufio.NewReader(io.NewSectionReader(f, e.data, e.end-e.data))
		var err error
		if zr == nil {
			zr, err = zlib.NewReader(sr)
		} else {
			err = zr.(zlib.Resetter).Reset(sr, nil)
		}
		if err != nil {
			return nil, fmt.Errorf("object at %d: %w", e.offset, err)
		}
		out := make([]byte, e.size)
		if _, err := io.ReadFull(zr, out); err != nil {
			return nil, fmt.Errorf("object at %d: %w", e.offset, err)
		}
		return out, nil
	}
	resolved := 0
	h := sha1.New()
	var walk func(b int, content []byte, depth int) error
	walk = func(b int, content []byte, depth int) error {
		kids := slices.Concat(onOffset[b], onID[string(objs[b].id)])
		delete(onID, string(objs[b].id)) // an object twice in the pack is refused by writeIdx
		if len(kids) > 0 && depth >= maxDeltaDepth {
			return fmt.Errorf("object at %d: deltas more than %d deep", objs[b].offset, maxDeltaDepth)
		}
		for _, k := range kids {
			e := &objs[k]
			e.baseAt = b
			delta, err := inflate(e)
			if err != nil {
				return err
			}
			out, err := applyDelta(content, delta)
			if err != nil {
				return fmt.Errorf("object at %d: %w", e.offset, err)
			}
			e.kind = objs[b].kind
			startObject(h, typeNames[e.kind], int64(len(out)))
			h.Write(out)
			e.id = h.Sum(nil)
			resolved++
			if err := walk(k, out, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range objs {
		e := &objs[i]
		if e.delta() {
			continue
		}
		if len(onOffset[i]) == 0 && len(onID[string(e.id)]) == 0 {
			continue
		}
		content, err := inflate(e)
		if err != nil {
			return err
		}
		if err := walk(i, content, 0); err != nil {
			return err
		}
	}
	if resolved != deltas {
		for i, e := range objs {
			if e.delta() && e.id == nil {
				if e.typ == objRefDelta {
					return fmt.Errorf("object at %d: delta base %s is not in the pack", e.offset, hex.EncodeToString(e.baseID))
				}
				return fmt.Errorf("object %d at %d: its delta base never resolves", i, e.offset)
			}
		}
	}
	return nil
}

// applyDelta applies a git delta to base.
func applyDelta(base, delta []byte) ([]byte, error) {
	varint := func() (int, error) {
		n, shift := 0, 0
		for {
			if len(delta) == 0 || shift > 56 {
				return 0, errors.New("malformed delta")
			}
			c := delta[0]
			delta = delta[1:]
			n |= int(c&0x7f) << shift
			shift += 7
			if c&0x80 == 0 {
				return n, nil
			}
		}
	}
	srcSize, err := varint()
	if err != nil {
		return nil, err
	}
	dstSize, err := varint()
	if err != nil {
		return nil, err
	}
	if srcSize != len(base) {
		return nil, fmt.Errorf("delta for a base of %d bytes applied to %d", srcSize, len(base))
	}
	// dstSize is the sender's word: room for at most 64 MiB is made
	// before the delta shows it, and out never grows beyond dstSize.
	out := make([]byte, 0, min(dstSize, 64<<20))
	for len(delta) > 0 {
		op := delta[0]
		delta = delta[1:]
		switch {
		case op&0x80 != 0:
			var off, n int
			for bit := range 7 {
				if op&(1<<bit) == 0 {
					continue
				}
				if len(delta) == 0 {
					return nil, errors.New("malformed delta")
				}
				if bit < 4 {
					off |= int(delta[0]) << (8 * bit)
				} else {
					n |= int(delta[0]) << (8 * (bit - 4))
				}
				delta = delta[1:]
			}
			if n == 0 {
				n = 0x10000
			}
			if off+n > len(base) || len(out)+n > dstSize {
				return nil, errors.New("delta copies out of bounds")
			}
			out = append(out, base[off:off+n]...)
		case op != 0:
			n := int(op)
			if n > len(delta) || len(out)+n > dstSize {
				return nil, errors.New("delta inserts out of bounds")
			}
			out = append(out, delta[:n]...)
			delta = delta[n:]
		default:
			return nil, errors.New("delta opcode 0")
		}
	}
	if len(out) != dstSize {
		return nil, fmt.Errorf("delta made %d bytes, it says %d", len(out), dstSize)
	}
	return out, nil
}

// writeIdx writes the version-2 index of a pack, as git index-pack does.
func writeIdx(w io.Writer, objs []packEntry, packSum []byte) error {
	order := make([]int, len(objs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(objs[a].id, objs[b].id) })
	for k := 1; k < len(order); k++ {
		if bytes.Equal(objs[order[k]].id, objs[order[k-1]].id) {
			return fmt.Errorf("object %x twice in the pack", objs[order[k]].id)
		}
	}
	h := sha1.New()
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	u32 := func(v uint32) { bw.Write(binary.BigEndian.AppendUint32(nil, v)) }
	bw.WriteString("\xfftOc")
	u32(2)
	var fanout [256]uint32
	for _, i := range order {
		fanout[objs[i].id[0]]++
	}
	var total uint32
	for _, n := range fanout {
		total += n
		u32(total)
	}
	for _, i := range order {
		bw.Write(objs[i].id)
	}
	for _, i := range order {
		u32(objs[i].crc)
	}
	var large []int64
	for _, i := range order {
		if off := objs[i].offset; off < 1<<31 {
			u32(uint32(off))
		} else {
			u32(1<<31 | uint32(len(large)))
			large = append(large, off)
		}
	}
	for _, off := range large {
		bw.Write(binary.BigEndian.AppendUint64(nil, uint64(off)))
	}
	bw.Write(packSum)
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(h.Sum(nil))
	return err
}

// storedPack is a pack that storePack wrote.
type storedPack struct {
	name string      // its path without .pack or .idx
	objs []packEntry // its objects, in pack order, deltas resolved
}

// storePack reads a pack from r into the repository repo, as
// objects/pack/pack-<sum>.pack and its index, and returns it. Nothing is
// left behind on failure.
func storePack(repo string, r io.Reader) (pack *storedPack, err error) {
	dir := filepath.Join(repo, "objects", "pack")
	var temps []*os.File
	defer func() {
		if err != nil {
			for _, t := range temps {
				t.Close()
				os.Remove(t.Name())
			}
		}
	}()
	create := func(prefix string) (*os.File, error) {
		t, err := os.CreateTemp(dir, prefix)
		if err == nil {
			temps = append(temps, t)
		}
		return t, err
	}
	f, err := create("tmp_pack_")
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	objs, sum, err := readPack(r, bw)
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := resolveDeltas(f, objs); err != nil {
		return nil, err
	}
	idx, err := create("tmp_idx_")
	if err != nil {
		return nil, err
	}
	if err := writeIdx(idx, objs, sum); err != nil {
		return nil, err
	}
	for _, t := range temps {
		if err := t.Chmod(0o444); err != nil {
			return nil, err
		}
		if err := t.Close(); err != nil {
			return nil, err
		}
	}
	name := filepath.Join(dir, "pack-"+hex.EncodeToString(sum))
	// The pack first: git looks for packs through their indexes.
	if err := os.Rename(f.Name(), name+".pack"); err != nil {
		return nil, err
	}
	if err := os.Rename(idx.Name(), name+".idx"); err != nil {
		return nil, err
	}
	return &storedPack{name, objs}, nil
}

// packReader reads the objects of a pack storePack wrote, by id, from its
// file, each one's bytes checked against its id (see objectSource): whole
// objects stream from the file, deltas are applied to their bases, the
// bases kept in memory up to maxBaseCache bytes.
type packReader struct {
	ctx    context.Context
	f      *os.File
	objs   []packEntry
	byID   map[string]int // an object's raw id → its index in objs
	isBase []bool
	cache  map[int][]byte // bases' contents by index
	cached int
	zr     io.ReadCloser
	h      hash.Hash
}

// maxBaseCache bounds the bytes of delta bases a packReader keeps.
const maxBaseCache = 32 << 20

func openPack(ctx context.Context, pack *storedPack) (*packReader, error) {
	f, err := os.Open(pack.name + ".pack")
	if err != nil {
		return nil, err
	}
	p := &packReader{ctx: ctx, f: f, objs: pack.objs, byID: make(map[string]int, len(pack.objs)),
		isBase: make([]bool, len(pack.objs)), cache: map[int][]byte{}, h: sha1.New()}
	for i, e := range pack.objs {
		p.byID[string(e.id)] = i
		if e.delta() {
			p.isBase[e.baseAt] = true
		}
	}
	return p, nil
}

func (p *packReader) request([]string) {}

func (p *packReader) close(err error) error {
	p.f.Close()
	return err
}

func (p *packReader) nextTo(id string, keep bool, dst io.Writer) (typ string, content []byte, err error) {
	if err := p.ctx.Err(); err != nil {
		return "", nil, err
	}
	raw, err := hex.DecodeString(id)
	i, ok := p.byID[string(raw)]
	if err != nil || !ok {
		return "", nil, &damagedError{&missingError{id}}
	}
	e := &p.objs[i]
	typ = typeNames[e.kind]
	if !e.delta() && !p.isBase[i] {
		// A whole object that no delta needs streams from the file.
		r, ierr := p.inflater(e)
		if ierr != nil {
			return "", nil, ierr
		}
		content, err = readObject(p.h, id, typ, e.size, r, keep, dst)
		if err == nil {
			err = p.ended(e)
		}
	} else {
		data, cerr := p.content(i, 0)
		if cerr != nil && p.ctx.Err() != nil {
			return "", nil, p.ctx.Err()
		} else if cerr != nil {
			return "", nil, cerr
		}
		content, err = readObject(p.h, id, typ, int64(len(data)), bytes.NewReader(data), keep, dst)
	}
	switch {
	case err != nil && p.ctx.Err() != nil:
		return "", nil, p.ctx.Err()
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = &damagedError{fmt.Errorf("%s.pack: object %s is cut short", p.name(), id)}
	}
	return typ, content, err
}

// ended checks that the zlib stream of e, read up to its size, ends there
// with its checksum intact, as git requires.
func (p *packReader) ended(e *packEntry) error {
	var one [1]byte
	if n, err := p.zr.Read(one[:]); n != 0 || err != io.EOF {
		return &damagedError{fmt.Errorf("%s.pack: object at %d: its data does not end as it should (%v)", p.name(), e.offset, err)}
	}
	return nil
}

func (p *packReader) name() string { return strings.TrimSuffix(p.f.Name(), ".pack") }

// inflater returns a reader of e's inflated bytes. Reading stops when the
// context is done, also within an object.
func (p *packReader) inflater(e *packEntry) (io.Reader, error) {
	sr := bufio.NewReader(ctxReader{p.ctx, io.NewSectionReader(p.f, e.data, e.end-e.data)})
	var err error
	if p.zr == nil {
		p.zr, err = zlib.NewReader(sr)
	} else {
		err = p.zr.(zlib.Resetter).Reset(sr, nil)
	}
	if err != nil {
		return nil, &damagedError{fmt.Errorf("%s.pack: object at %d: %w", p.name(), e.offset, err)}
	}
	return p.zr, nil
}

// content returns the bytes of object i, its deltas applied, depth deltas
// below the object asked for.
func (p *packReader) content(i, depth int) ([]byte, error) {
	if data, ok := p.cache[i]; ok {
		return data, nil
	}
	if depth > maxDeltaDepth { // storePack refused deeper chains
		return nil, fmt.Errorf("%s.pack: deltas more than %d deep", p.name(), maxDeltaDepth)
	}
	e := &p.objs[i]
	r, err := p.inflater(e)
	if err != nil {
		return nil, err
	}
	data := make([]byte, e.size)
	if _, err := io.ReadFull(r, data); err != nil {
		return nil, &damagedError{fmt.Errorf("%s.pack: object at %d: %w", p.name(), e.offset, err)}
	}
	if err := p.ended(e); err != nil {
		return nil, err
	}
	if e.delta() {
		base, err := p.content(e.baseAt, depth+1)
		if err != nil {
			return nil, err
		}
		if data, err = applyDelta(base, data); err != nil {
			return nil, &damagedError{fmt.Errorf("%s.pack: object at %d: %w", p.name(), e.offset, err)}
		}
	}
	if p.isBase[i] {
		if p.cached+len(data) > maxBaseCache {
			clear(p.cache)
			p.cached = 0
		}
		p.cache[i] = data
		p.cached += len(data)
	}
	return data, nil
}

// ctxReader is r until ctx is done, then ctx's error.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
