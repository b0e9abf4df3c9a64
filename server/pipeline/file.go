package pipeline

import "fmt"

// LoadFile reads a pipeline config file with read (the caller bounds
// it) and parses it; no path means DefaultConfig. A file that cannot be
// read or parsed is an error that wraps ErrInvalidConfig and names the
// file.
func LoadFile(path string, read func(path string) ([]byte, error)) (*Config, error) {
	if path == "" {
		return DefaultConfig(), nil
	}
	data, err := read(path)
	if err != nil {
		return nil, readError{err}
	}
	cfg, err := LoadConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// readError is a file that could not be read: bad input, said as is.
type readError struct{ err error }

func (e readError) Error() string   { return e.err.Error() }
func (e readError) Unwrap() []error { return []error{ErrInvalidConfig, e.err} }
