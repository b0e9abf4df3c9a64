package history

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// FileName is the history file in a history folder.
const FileName = "history.jsonl"

// JSONL is a history kept as a JSON-lines file, one record a line, in the
// order appended: what a CI cache or a repository keeps well (append-only
// text, diffable, mergeable by concatenation, readable with jq).
//
// Appends take an exclusive flock on the file and write each record with
// one write(2) on an O_APPEND descriptor, then fsync: concurrent appenders
// (parallel CI jobs on one cache) never interleave. Readers take a shared
// lock. A crashed writer can leave a torn last line (no newline, not a
// record): List skips it with a warning, and the next Append cuts it off
// before writing. A line over MaxLineBytes, or a malformed line anywhere
// else, is an error wrapping ErrInput: a history file is user input.
type JSONL struct {
	path string
	// MaxLineBytes bounds one line (default MaxRecordBytes).
	MaxLineBytes int
	warn         func(string)
}

// OpenJSONL opens the history of a folder (its history.jsonl), or the
// file itself when location ends in .jsonl. Nothing is created until the
// first Append.
func OpenJSONL(location string, opts Options) (*JSONL, error) {
	path := location
	if !strings.HasSuffix(location, ".jsonl") {
		path = filepath.Join(location, FileName)
		if st, err := os.Stat(location); err == nil && !st.IsDir() {
			return nil, fmt.Errorf("%w: %s is not a folder (a history is a folder holding %s, a .jsonl file, or a postgres:// URL)", ErrInput, location, FileName)
		}
	}
	if st, err := os.Stat(path); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInput, path)
	}
	return &JSONL{path: path, warn: opts.Warn}, nil
}

// Path is the history file.
func (j *JSONL) Path() string { return j.path }

// Close does nothing: every call opens and closes the file.
func (j *JSONL) Close() error { return nil }

func (j *JSONL) maxLine() int {
	if j.MaxLineBytes > 0 {
		return j.MaxLineBytes
	}
	return MaxRecordBytes
}

func (j *JSONL) warnf(format string, args ...any) {
	if j.warn != nil {
		j.warn(fmt.Sprintf(format, args...))
	}
}

// lock takes a flock on f, polling so that ctx can stop the wait.
func lock(ctx context.Context, f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lock %s: %w", f.Name(), ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// scan is what a pass over the file found.
type scan struct {
	// tornAt is the offset of a torn last line (-1: none); newline says
	// the last line is a record without its newline.
	tornAt   int64
	tornLine int
	newline  bool
}

// read reads the file's records in order, calling each with every record;
// it stops at ctx. The file is at most size bytes (what was there when
// the lock was taken).
func (j *JSONL) read(ctx context.Context, f io.ReaderAt, size int64, each func(Record)) (scan, error) {
	s := scan{tornAt: -1}
	rd := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), j.maxLine()+1)
	var off int64
	for lineNo := 1; ; lineNo++ {
		if lineNo%1024 == 0 && ctx.Err() != nil {
			return s, ctx.Err()
		}
		line, err := rd.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return s, fmt.Errorf("%w: %s:%d: a line over %d bytes: not a history record (is this a darktime history?)", ErrInput, j.path, lineNo, j.maxLine())
		case err != nil && !errors.Is(err, io.EOF):
			return s, fmt.Errorf("%w: %s: %w", ErrInput, j.path, err)
		}
		last := errors.Is(err, io.EOF)
		if last && len(line) == 0 {
			return s, nil
		}
		body := bytes.TrimSpace(line)
		if len(body) > 0 {
			rec, perr := ParseRecord(body)
			switch {
			case perr == nil:
				each(rec)
				s.newline = last
			case last:
				// No newline and no record: a writer died mid-line.
				s.tornAt, s.tornLine = off, lineNo
			default:
				return s, fmt.Errorf("%s:%d: %w", j.path, lineNo, perr)
			}
		}
		off += int64(len(line))
		if last {
			return s, nil
		}
	}
}

// List returns the records that match f, oldest first. With f.Limit, at
// most that many are held in memory.
func (j *JSONL) List(ctx context.Context, flt Filter) ([]Record, error) {
	f, err := os.Open(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no history at %s (nothing appended yet? darktime run or report --history %s appends)", ErrInput, j.path, filepath.Dir(j.path))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInput, j.path)
	}
	if err := lock(ctx, f, syscall.LOCK_SH); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	if st, err = f.Stat(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	var out []Record
	s, err := j.read(ctx, f, st.Size(), func(r Record) {
		if !flt.match(r) {
			return
		}
		out = append(out, r)
		if flt.Limit > 0 && len(out) > 2*flt.Limit {
			out = append(out[:0], out[len(out)-flt.Limit:]...)
		}
	})
	if err != nil {
		return nil, err
	}
	if s.tornAt >= 0 {
		j.warnf("%s:%d: a torn last line (%d bytes, no newline: a writer stopped mid-record) is not a record: skipped", j.path, s.tornLine, st.Size()-s.tornAt)
	}
	if flt.Limit > 0 && len(out) > flt.Limit {
		out = out[len(out)-flt.Limit:]
	}
	return out, nil
}

// Append adds r at the end of the file, creating the folder and the file
// when needed.
func (j *JSONL) Append(ctx context.Context, r Record) error {
	line, err := r.Marshal()
	if err != nil {
		return err
	}
	if len(line) > j.maxLine() {
		return fmt.Errorf("%w: run %s: the record is %d bytes, over the line limit %d", ErrMalformed, r.RunID, len(line), j.maxLine())
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	defer f.Close()
	if err := lock(ctx, f, syscall.LOCK_EX); err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", ErrInput, j.path)
	}
	dup := false
	s, err := j.read(ctx, f, st.Size(), func(old Record) { dup = dup || old.Key() == r.Key() })
	if err != nil {
		return err
	}
	if dup {
		return fmt.Errorf("%w: run %s (target %q) in %s", ErrDuplicate, r.RunID, r.Target, j.path)
	}
	if s.tornAt >= 0 {
		if err := f.Truncate(s.tornAt); err != nil {
			return fmt.Errorf("%w: cut the torn last line of %s: %w", ErrInput, j.path, err)
		}
		j.warnf("%s: cut off the torn last line (%d bytes) before appending", j.path, st.Size()-s.tornAt)
	}
	buf := make([]byte, 0, len(line)+2)
	if s.newline {
		buf = append(buf, '\n')
	}
	buf = append(append(buf, line...), '\n')
	if _, err := f.Write(buf); err != nil {
		return fmt.Errorf("append to %s: %w", j.path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("append to %s: %w", j.path, err)
	}
	return f.Close()
}
