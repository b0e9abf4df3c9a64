//go:build !unix

package inputfile

import (
	"context"
	"os"
)

// open opens path for reading; elsewhere than on Unix a special file's
// open is not interrupted.
func open(_ context.Context, path string, _ bool) (*os.File, error) {
	return os.Open(path)
}
