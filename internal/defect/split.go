package defect

import "bytes"

// maxFrame bounds a frame the splitter holds: a longer one passes as it
// is, undropped.
const maxFrame = 1 << 20

// frame is one event-stream frame: its bytes up to and including the
// blank line, its id and data (nil when none), and whether it is an
// event (has data).
type frame struct {
	raw      []byte
	id, data []byte
	event    bool
}

// splitter cuts an event stream into frames at blank lines (a line ends
// with CRLF, LF or CR, as the specification says).
type splitter struct {
	buf      []byte
	start    int // where the frame being read starts
	pos      int // where the next line starts
	id, data []byte
	event    bool
}

// feed adds bytes and returns the frames they complete.
func (s *splitter) feed(b []byte) []frame {
	s.buf = append(s.buf, b...)
	var out []frame
	for {
		i := bytes.IndexAny(s.buf[s.pos:], "\r\n")
		if i < 0 {
			break
		}
		end := s.pos + i
		term := 1
		if s.buf[end] == '\r' {
			if end+1 == len(s.buf) {
				break // a CR at the end: its LF may come next
			}
			if s.buf[end+1] == '\n' {
				term = 2
			}
		}
		line := s.buf[s.pos:end]
		s.pos = end + term
		if len(line) == 0 {
			out = append(out, s.take(s.pos))
			continue
		}
		s.field(line)
	}
	// Keep only the frame being read.
	s.buf = append(s.buf[:0], s.buf[s.start:]...)
	s.pos -= s.start
	s.start = 0
	if len(s.buf) > maxFrame {
		out = append(out, frame{raw: s.rest()})
	}
	return out
}

// field notes the id and data lines of the frame being read.
func (s *splitter) field(line []byte) {
	name, val, _ := bytes.Cut(line, []byte(":"))
	val = bytes.TrimPrefix(val, []byte(" "))
	switch string(name) {
	case "id":
		s.id = append(s.id[:0:0], val...)
	case "data":
		s.event = true
		s.data = append(append(s.data, val...), '\n')
	}
}

// take returns the frame that ends at n and starts a new one.
func (s *splitter) take(n int) frame {
	f := frame{raw: append([]byte(nil), s.buf[s.start:n]...), id: s.id, data: s.data, event: s.event}
	s.start, s.id, s.data, s.event = n, nil, nil, false
	return f
}

// rest returns what is buffered and resets the splitter.
func (s *splitter) rest() []byte {
	r := append([]byte(nil), s.buf[s.start:]...)
	s.buf, s.start, s.pos, s.id, s.data, s.event = s.buf[:0], 0, 0, nil, nil, false
	return r
}
