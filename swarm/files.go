package swarm

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFiles writes res to the file out (Write) and, when hdrLog is not
// empty, its per-second histograms to hdrLog (WriteHdrLog). Each file is
// written beside itself and renamed into place, so a reader never sees
// half of one.
func WriteFiles(res *Result, out, hdrLog string) error {
	if err := writeAtomic(out, res.Write); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if hdrLog != "" {
		if err := writeAtomic(hdrLog, func(w io.Writer) error { return WriteHdrLog(w, res) }); err != nil {
			return fmt.Errorf("write hdr log: %w", err)
		}
	}
	return nil
}

func writeAtomic(path string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
