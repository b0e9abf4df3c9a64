package shadow

// scanner is a push parser of an event stream that keeps, of each event,
// only what reconciliation needs: its type and a 64-bit identity. It
// follows the same rules as internal/sse's Reader (lines end in CRLF, LF
// or CR; a leading BOM is skipped; one space after the colon is dropped;
// an event is dispatched on a blank line and only when it has data; ids
// with NUL are ignored), but it is fed the bytes as they pass through the
// proxy, so the primary's stream is never copied or delayed, and data is
// hashed as it goes rather than buffered.
type scanner struct {
	byID bool // identity from the id field (else from the data)
	emit func(typ []byte, identity uint64)

	state    uint8
	field    uint8
	bom      uint8 // bytes of a leading BOM matched so far; 3: done
	skipLF   bool
	name     [8]byte
	nameLen  int
	val      []byte // value of an event or id line (bounded)
	dataHash uint64
	lines    int // data lines of the event so far
	typ      []byte
	lastID   []byte
	pending  []byte
	hasPend  bool
}

const (
	stLineStart = iota
	stName
	stSpace // just after the colon: one space is dropped
	stValue
	stSkip // rest of an ignored line
)

const (
	fNone = iota
	fData
	fEvent
	fID
)

const maxFieldValue = 4096

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

func newScanner(byID bool, emit func(typ []byte, identity uint64)) *scanner {
	return &scanner{byID: byID, emit: emit, dataHash: fnvOffset}
}

// Write feeds bytes of the stream; it never fails.
func (s *scanner) Write(p []byte) (int, error) {
	for _, b := range p {
		s.feed(b)
	}
	return len(p), nil
}

func (s *scanner) feed(b byte) {
	if s.bom < 3 {
		const bom = "\xEF\xBB\xBF"
		if b == bom[s.bom] {
			s.bom++
			return
		}
		if s.bom > 0 { // a partial BOM is data: replay it
			n := s.bom
			s.bom = 3
			for i := uint8(0); i < n; i++ {
				s.feed(bom[i])
			}
		}
		s.bom = 3
	}
	if s.skipLF {
		s.skipLF = false
		if b == '\n' {
			return
		}
	}
	if b == '\n' || b == '\r' {
		s.skipLF = b == '\r'
		s.endLine()
		return
	}
	switch s.state {
	case stLineStart:
		if b == ':' {
			s.state = stSkip // comment
			return
		}
		s.state = stName
		s.nameLen = 0
		fallthrough
	case stName:
		if b == ':' {
			s.startValue()
			s.state = stSpace
			return
		}
		if s.nameLen < len(s.name) {
			s.name[s.nameLen] = b
		}
		s.nameLen++
	case stSpace:
		s.state = stValue
		if b == ' ' {
			return
		}
		s.value(b)
	case stValue:
		s.value(b)
	}
}

// startValue decides what the line is from its field name.
func (s *scanner) startValue() {
	s.field = fNone
	if s.nameLen <= len(s.name) {
		switch string(s.name[:s.nameLen]) {
		case "data":
			s.field = fData
			if s.lines > 0 {
				s.dataHash = (s.dataHash ^ '\n') * fnvPrime
			}
			s.lines++
		case "event":
			s.field = fEvent
			s.val = s.val[:0]
		case "id":
			s.field = fID
			s.val = s.val[:0]
		}
	}
}

func (s *scanner) value(b byte) {
	switch s.field {
	case fData:
		s.dataHash = (s.dataHash ^ uint64(b)) * fnvPrime
	case fEvent, fID:
		if len(s.val) < maxFieldValue {
			s.val = append(s.val, b)
		}
	}
}

func (s *scanner) endLine() {
	switch s.state {
	case stLineStart:
		s.dispatch()
	case stName: // a field name without a colon: the value is empty
		s.startValue()
		s.endField()
	case stSpace, stValue:
		s.endField()
	}
	s.state = stLineStart
}

func (s *scanner) endField() {
	switch s.field {
	case fEvent:
		s.typ = append(s.typ[:0], s.val...)
	case fID:
		for _, c := range s.val {
			if c == 0 {
				return
			}
		}
		s.pending = append(s.pending[:0], s.val...)
		s.hasPend = true
	}
}

func (s *scanner) dispatch() {
	if s.hasPend {
		s.lastID = append(s.lastID[:0], s.pending...)
		s.hasPend = false
	}
	if s.lines > 0 {
		var id uint64
		if s.byID && len(s.lastID) > 0 {
			id = hashBytes(fnvOffset, s.lastID)
		} else {
			id = s.dataHash
		}
		s.emit(s.typ, mixIdentity(hashBytes(fnvOffset, s.typ), id))
	}
	s.typ = s.typ[:0]
	s.lines = 0
	s.dataHash = fnvOffset
}

func hashBytes(h uint64, p []byte) uint64 {
	for _, b := range p {
		h = (h ^ uint64(b)) * fnvPrime
	}
	return h
}

func mixIdentity(typ, body uint64) uint64 {
	h := typ*0x9e3779b97f4a7c15 ^ body
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
