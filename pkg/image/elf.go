package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrNotELF is returned by ParseELF for input that is not an ELF executable
// or shared object.
var ErrNotELF = errors.New("not an ELF executable or shared object")

// ELF constants used by the parser (see elf(5)). Only what ld.so reads is
// needed: the file header, the program headers, PT_INTERP and PT_DYNAMIC.
const (
	elfHeader32 = 52
	elfHeader64 = 64
	phdrSize32  = 32
	phdrSize64  = 56

	etExec = 2
	etDyn  = 3

	ptLoad    = 1
	ptDynamic = 2
	ptInterp  = 3

	dtNull    = 0
	dtNeeded  = 1
	dtStrtab  = 5
	dtStrsz   = 10
	dtSoname  = 14
	dtRpath   = 15
	dtRunpath = 29

	emI386    = 3
	emARM     = 40
	emX86_64  = 62
	emAArch64 = 183
)

// Bounds on hostile input. They follow what the Linux kernel and ld.so
// accept, with headroom.
const (
	maxPhdrTable   = 64 << 10 // the kernel refuses larger program header tables
	maxInterp      = 4096     // PATH_MAX
	maxDynamic     = 1 << 20  // bytes of PT_DYNAMIC read
	maxDynString   = 4096     // one DT_NEEDED/RPATH/... string
	maxNeeded      = 4096     // DT_NEEDED entries
	maxDynStrTotal = 1 << 20  // total bytes of strings read per file
)

// ParseELF reads what the dynamic loader needs from an ELF file: class,
// machine, type, PT_INTERP (with its file offset and size), and from the
// dynamic segment DT_NEEDED (in order), DT_RPATH, DT_RUNPATH and DT_SONAME.
//
// It uses the program headers only, as ld.so does, so stripped files and
// files without section headers parse. The DT_STRTAB address is mapped to a
// file offset through the PT_LOAD segments. Both byte orders and both
// classes are supported. Every offset and size is checked against size and
// against fixed bounds; ParseELF never allocates more than a few MiB, even
// for hostile input. Files that are not ELF, or are ELF but neither
// ET_EXEC nor ET_DYN (objects, core dumps), yield an error wrapping
// ErrNotELF.
func ParseELF(r io.ReaderAt, size int64) (*ELFInfo, error) {
	var ident [elfHeader64]byte
	n, err := r.ReadAt(ident[:], 0)
	if n < elfHeader32 {
		if err == nil || err == io.EOF {
			err = ErrNotELF
		}
		return nil, fmt.Errorf("reading ELF header: %w", err)
	}
	if !bytes.HasPrefix(ident[:], []byte("\x7fELF")) {
		return nil, ErrNotELF
	}
	p := elfParser{r: r, size: size}
	info := &ELFInfo{}
	table, err := p.header(ident[:], n, info)
	if err != nil {
		return nil, err
	}
	if err := p.programHeaders(info, table); err != nil {
		return nil, err
	}
	return info, nil
}

// phdrTable is where the file header says the program headers are.
type phdrTable struct {
	off          uint64
	entsize, num uint16
}

// header decodes the file header (n bytes of ident were read): the byte
// order into p; class, type and machine into info; and where the program
// headers are.
func (p *elfParser) header(ident []byte, n int, info *ELFInfo) (phdrTable, error) {
	switch ident[5] {
	case 1:
		p.bo = binary.LittleEndian
	case 2:
		p.bo = binary.BigEndian
	default:
		return phdrTable{}, fmt.Errorf("%w: bad data encoding %d", ErrNotELF, ident[5])
	}
	var t phdrTable
	switch ident[4] {
	case 1:
		info.Class = 32
		t = phdrTable{off: uint64(p.bo.Uint32(ident[28:])), entsize: p.bo.Uint16(ident[42:]), num: p.bo.Uint16(ident[44:])}
	case 2:
		if n < elfHeader64 {
			return phdrTable{}, fmt.Errorf("%w: truncated header", ErrNotELF)
		}
		info.Class = 64
		t = phdrTable{off: p.bo.Uint64(ident[32:]), entsize: p.bo.Uint16(ident[54:]), num: p.bo.Uint16(ident[56:])}
	default:
		return phdrTable{}, fmt.Errorf("%w: bad class %d", ErrNotELF, ident[4])
	}
	switch typ := p.bo.Uint16(ident[16:]); typ {
	case etExec:
		info.Type = "exec"
	case etDyn:
		info.Type = "dyn"
	default:
		return phdrTable{}, fmt.Errorf("%w: type %d", ErrNotELF, typ)
	}
	info.Machine = machineName(p.bo.Uint16(ident[18:]))
	return t, nil
}

// programHeaders reads the program header table t: the PT_LOAD segments
// into p, the first PT_INTERP into info, then the first PT_DYNAMIC.
func (p *elfParser) programHeaders(info *ELFInfo, t phdrTable) error {
	want := uint16(phdrSize64)
	if info.Class == 32 {
		want = phdrSize32
	}
	if t.num == 0 {
		return nil
	}
	if t.entsize < want {
		return fmt.Errorf("program header entry size %d, want at least %d", t.entsize, want)
	}
	tableSize := uint64(t.entsize) * uint64(t.num)
	if tableSize > maxPhdrTable {
		return fmt.Errorf("program header table of %d bytes exceeds %d", tableSize, maxPhdrTable)
	}
	table, err := p.read(t.off, tableSize)
	if err != nil {
		return fmt.Errorf("reading program headers: %w", err)
	}
	var dyn *progHeader
	for i := range int(t.num) {
		ph := p.phdr(table[i*int(t.entsize):], info.Class)
		switch ph.typ {
		case ptLoad:
			p.loads = append(p.loads, ph)
		case ptDynamic:
			if dyn == nil {
				d := ph
				dyn = &d
			}
		case ptInterp:
			if info.Interp != "" || info.InterpSize != 0 {
				continue // the kernel uses the first one
			}
			if err := p.interp(info, ph); err != nil {
				return err
			}
		}
	}
	if dyn != nil {
		return p.dynamic(info, *dyn)
	}
	return nil
}

// interp reads the loader's path from the PT_INTERP segment ph.
func (p *elfParser) interp(info *ELFInfo, ph progHeader) error {
	if ph.filesz < 2 || ph.filesz > maxInterp {
		return fmt.Errorf("PT_INTERP of %d bytes", ph.filesz)
	}
	b, err := p.read(ph.offset, ph.filesz)
	if err != nil {
		return fmt.Errorf("reading PT_INTERP: %w", err)
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	info.Interp = string(b)
	info.InterpOffset = int64(ph.offset)
	info.InterpSize = int64(ph.filesz)
	return nil
}

type progHeader struct {
	typ                          uint32
	offset, vaddr, filesz, memsz uint64
}

type elfParser struct {
	r     io.ReaderAt
	size  int64
	bo    binary.ByteOrder
	loads []progHeader
	// strBytes counts string bytes read, to bound work on hostile input.
	strBytes int
}

// read returns n bytes at off, checking both against the file size.
func (p *elfParser) read(off, n uint64) ([]byte, error) {
	if off > uint64(p.size) || n > uint64(p.size)-off {
		return nil, fmt.Errorf("%d bytes at offset %d beyond end of file (%d bytes)", n, off, p.size)
	}
	b := make([]byte, n)
	if _, err := p.r.ReadAt(b, int64(off)); err != nil && !(err == io.EOF && n > 0) {
		return nil, err
	}
	return b, nil
}

func (p *elfParser) phdr(b []byte, class int) progHeader {
	if class == 32 {
		return progHeader{
			typ:    p.bo.Uint32(b[0:]),
			offset: uint64(p.bo.Uint32(b[4:])),
			vaddr:  uint64(p.bo.Uint32(b[8:])),
			filesz: uint64(p.bo.Uint32(b[16:])),
			memsz:  uint64(p.bo.Uint32(b[20:])),
		}
	}
	return progHeader{
		typ:    p.bo.Uint32(b[0:]),
		offset: p.bo.Uint64(b[8:]),
		vaddr:  p.bo.Uint64(b[16:]),
		filesz: p.bo.Uint64(b[32:]),
		memsz:  p.bo.Uint64(b[40:]),
	}
}

// vaddrToOffset maps a virtual address to a file offset through the PT_LOAD
// segments, as the loader sees the file once mapped.
func (p *elfParser) vaddrToOffset(addr uint64) (uint64, uint64, bool) {
	for _, l := range p.loads {
		if addr >= l.vaddr && addr-l.vaddr < l.filesz {
			d := addr - l.vaddr
			if l.offset > ^uint64(0)-d {
				continue
			}
			return l.offset + d, l.filesz - d, true
		}
	}
	return 0, 0, false
}

// dynamic reads DT_NEEDED, DT_RPATH, DT_RUNPATH and DT_SONAME from the
// dynamic segment ph into info.
func (p *elfParser) dynamic(info *ELFInfo, ph progHeader) error {
	n := ph.filesz
	if n > maxDynamic {
		n = maxDynamic
	}
	// Some files have a PT_DYNAMIC that reaches past the end of the file;
	// read what is there.
	if ph.offset >= uint64(p.size) {
		return fmt.Errorf("PT_DYNAMIC at offset %d beyond end of file (%d bytes)", ph.offset, p.size)
	}
	if rest := uint64(p.size) - ph.offset; n > rest {
		n = rest
	}
	b, err := p.read(ph.offset, n)
	if err != nil {
		return fmt.Errorf("reading PT_DYNAMIC: %w", err)
	}
	d, err := p.dynamicEntries(b, info.Class)
	if err != nil {
		return err
	}
	if len(d.needed) == 0 && !d.haveRpath && !d.haveRunpath && !d.haveSO {
		return nil
	}
	return p.dynamicStrings(info, d)
}

// dynEntries are the dynamic entries the loader reads: string table
// offsets, and where the string table is.
type dynEntries struct {
	strtab, strsz                  uint64
	haveStrtab                     bool
	needed                         []uint64
	rpath, runpath, soname         []uint64
	haveRpath, haveRunpath, haveSO bool
}

// dynamicEntries decodes the dynamic segment b up to DT_NULL.
func (p *elfParser) dynamicEntries(b []byte, class int) (dynEntries, error) {
	entSize := 16
	if class == 32 {
		entSize = 8
	}
	var d dynEntries
	for i := 0; i+entSize <= len(b); i += entSize {
		var tag int64
		var val uint64
		if class == 32 {
			tag = int64(int32(p.bo.Uint32(b[i:])))
			val = uint64(p.bo.Uint32(b[i+4:]))
		} else {
			tag = int64(p.bo.Uint64(b[i:]))
			val = p.bo.Uint64(b[i+8:])
		}
		if tag == dtNull {
			break
		}
		switch tag {
		case dtNeeded:
			if len(d.needed) >= maxNeeded {
				return d, fmt.Errorf("more than %d DT_NEEDED entries", maxNeeded)
			}
			d.needed = append(d.needed, val)
		case dtStrtab:
			d.strtab, d.haveStrtab = val, true
		case dtStrsz:
			d.strsz = val
		case dtRpath:
			d.rpath, d.haveRpath = append(d.rpath, val), true
		case dtRunpath:
			d.runpath, d.haveRunpath = append(d.runpath, val), true
		case dtSoname:
			d.soname, d.haveSO = append(d.soname[:0], val), true
		}
		if len(d.rpath) > 16 || len(d.runpath) > 16 {
			return d, errors.New("too many DT_RPATH/DT_RUNPATH entries")
		}
	}
	return d, nil
}

// dynamicStrings reads the strings d names from the string table DT_STRTAB
// points to, mapped through the PT_LOAD segments.
func (p *elfParser) dynamicStrings(info *ELFInfo, d dynEntries) error {
	if !d.haveStrtab {
		return errors.New("dynamic segment has strings but no DT_STRTAB")
	}
	base, avail, ok := p.vaddrToOffset(d.strtab)
	if !ok {
		return fmt.Errorf("DT_STRTAB address %#x is in no PT_LOAD segment", d.strtab)
	}
	if d.strsz != 0 && d.strsz < avail {
		avail = d.strsz
	}
	str := func(off uint64) (string, error) {
		if off >= avail {
			return "", fmt.Errorf("string offset %d beyond string table (%d bytes)", off, avail)
		}
		s, err := p.cstring(base+off, avail-off)
		if err != nil {
			return "", fmt.Errorf("reading dynamic string at %d: %w", off, err)
		}
		return s, nil
	}
	strs := func(offs []uint64, add func(string)) error {
		for _, off := range offs {
			s, err := str(off)
			if err != nil {
				return err
			}
			add(s)
		}
		return nil
	}
	if err := strs(d.needed, func(s string) { info.Needed = append(info.Needed, s) }); err != nil {
		return err
	}
	if err := strs(d.rpath, func(s string) { info.RPath = append(info.RPath, splitPath(s)...) }); err != nil {
		return err
	}
	if err := strs(d.runpath, func(s string) { info.RunPath = append(info.RunPath, splitPath(s)...) }); err != nil {
		return err
	}
	if d.haveSO {
		s, err := str(d.soname[0])
		if err != nil {
			return err
		}
		info.SOName = s
	}
	return nil
}

// cstring reads a NUL-terminated string at off, at most limit bytes (and at
// most maxDynString).
func (p *elfParser) cstring(off, limit uint64) (string, error) {
	if limit > maxDynString {
		limit = maxDynString
	}
	if off >= uint64(p.size) {
		return "", fmt.Errorf("offset %d beyond end of file", off)
	}
	if rest := uint64(p.size) - off; limit > rest {
		limit = rest
	}
	var sb strings.Builder
	var buf [256]byte
	for read := uint64(0); read < limit; {
		n := min(uint64(len(buf)), limit-read)
		p.strBytes += int(n)
		if p.strBytes > maxDynStrTotal {
			return "", fmt.Errorf("more than %d bytes of dynamic strings", maxDynStrTotal)
		}
		m, err := p.r.ReadAt(buf[:n], int64(off+read))
		if i := bytes.IndexByte(buf[:m], 0); i >= 0 {
			sb.Write(buf[:i])
			return sb.String(), nil
		}
		sb.Write(buf[:m])
		read += uint64(m)
		if err != nil {
			if err == io.EOF {
				break
			}
			return "", err
		}
		if m == 0 {
			break
		}
	}
	return "", errors.New("unterminated string")
}

// splitPath splits a DT_RPATH/DT_RUNPATH value on ':' as ld.so does,
// dropping empty elements.
func splitPath(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ":") {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

func machineName(m uint16) string {
	switch m {
	case emX86_64:
		return "x86_64"
	case emAArch64:
		return "aarch64"
	case emI386:
		return "i386"
	case emARM:
		return "arm"
	}
	return fmt.Sprintf("em-%d", m)
}
