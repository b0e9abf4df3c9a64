// Package inputfile reads the files darktime's commands are given with a
// size limit, a refusal of files that are not regular files, and a
// context that stops the read. Before it, `darktime report /dev/zero` grew
// to 23 GB, and a FIFO with no writer held the process past SIGTERM
// (issue 12).
//
// Read stats the path first: a directory, a FIFO, a socket or a device
// (/dev/zero, /dev/stdin on a terminal) is refused unless
// Options.AllowSpecial is set — then it is read like a file, still
// bounded by the limit and the context. A file over the limit is refused
// by its size before it is opened; a special file is cut when the limit is
// passed.
package inputfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// DefaultMaxBytes is the limit when Options.MaxBytes is 0.
const DefaultMaxBytes = 256 << 20

// Sentinel errors, wrapped by Read's errors.
var (
	ErrTooLarge   = errors.New("input file too large")
	ErrNotRegular = errors.New("not a regular file")
)

// Options are how Read reads one file. The zero value reads regular files
// up to DefaultMaxBytes.
type Options struct {
	// MaxBytes is the size limit; 0 means DefaultMaxBytes.
	MaxBytes int64
	// AllowSpecial reads FIFOs, pipes and devices too.
	AllowSpecial bool
	// RaiseLimit and AllowSpecialHint tell the user how to change the
	// limit and the refusal ("--max-input-bytes", "--allow-special-files"),
	// in the error messages. Optional.
	RaiseLimit, AllowSpecialHint string
}

func (o Options) limit() int64 {
	if o.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return o.MaxBytes
}

// Read returns the content of the file at path: see the package
// documentation. Its errors name the path; a cancelled ctx returns
// ctx.Err() (wrapped) as soon as the read in progress can be interrupted.
func Read(ctx context.Context, path string, opts Options) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err // *fs.PathError names the path
	}
	limit := opts.limit()
	special := !st.Mode().IsRegular()
	if st.IsDir() {
		return nil, fmt.Errorf("%s: %w: it is a directory", path, ErrNotRegular)
	}
	if special && !opts.AllowSpecial {
		hint := ""
		if opts.AllowSpecialHint != "" {
			hint = " (" + opts.AllowSpecialHint + " reads it, up to the size limit)"
		}
		return nil, fmt.Errorf("%s: %w: it is %s%s", path, ErrNotRegular, kind(st.Mode()), hint)
	}
	if !special && st.Size() > limit {
		return nil, tooLarge(path, st.Size(), limit, opts)
	}
	f, err := open(ctx, path, special)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	hint := int64(0)
	if !special {
		hint = st.Size()
	}
	data, err := readAll(ctx, f, limit, hint)
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, tooLarge(path, -1, limit, opts)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%s: %w", path, ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

func tooLarge(path string, size, limit int64, opts Options) error {
	have := "" // unknown for a FIFO or a device: it was cut at the limit
	if size >= 0 {
		have = fmt.Sprintf("%d bytes, ", size)
	}
	hint := ""
	if opts.RaiseLimit != "" {
		hint = fmt.Sprintf("; raise it with %s", opts.RaiseLimit)
	}
	return fmt.Errorf("%s: %w: %sover the limit of %d bytes%s", path, ErrTooLarge, have, limit, hint)
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO or a pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// readAll reads up to limit bytes in chunks, checking ctx between them.
// A read that blocks (a FIFO, a pipe) is interrupted through a read
// deadline, which the os package supports for every pollable file.
// size is the file's size when known (the buffer starts that large).
func readAll(ctx context.Context, f *os.File, limit, size int64) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 0, min(size, limit)+1)
	chunk := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n, err := f.Read(chunk)
		if int64(len(buf))+int64(n) > limit {
			return nil, ErrTooLarge
		}
		buf = append(buf, chunk[:n]...)
		switch {
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return nil, err
		}
	}
}
