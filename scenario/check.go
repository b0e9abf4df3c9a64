package scenario

import (
	"context"
	"fmt"
	"io"
)

// CheckFiles checks every file and writes one line per valid scenario to
// w and every problem of the others to errw. It returns an error wrapping
// ErrInvalid when any file does not check (`darktime run --check` exits 2).
// ctx stops reading a file (a FIFO with --allow-special-files).
func CheckFiles(ctx context.Context, w, errw io.Writer, files []string, opts Options) error {
	if len(files) == 0 {
		return fmt.Errorf("%w: no scenario file given", ErrInvalid)
	}
	bad := 0
	for _, f := range files {
		s, err := LoadFileContext(ctx, f, opts)
		if err != nil {
			bad++
			fmt.Fprintln(errw, err)
			continue
		}
		fmt.Fprintf(w, "ok %s: %s\n", f, s.Summary())
	}
	if bad > 0 {
		return fmt.Errorf("%w: %d of %d scenario file(s) do not check", ErrInvalid, bad, len(files))
	}
	return nil
}
