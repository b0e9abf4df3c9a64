// Command darktime is the one binary of the darktime toolkit: the reference
// realtime server, the swarm, the shadow proxy, reports and scenarios. Each
// subcommand lives in its own small file and only wires flags to a package.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/internal/inputfile"
	"github.com/darktime/darktime/internal/yamlsafe"
	"github.com/darktime/darktime/report"
)

// usageError marks errors caused by bad input; they exit with status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError is an error with its own exit code (darktime canary: 1
// rolled back, 3 the proxy unreachable or interrupted; darktime run: 3
// the target unreachable or the run interrupted).
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// usageIf makes err a usage error when it wraps one of kinds: the
// packages' sentinels for bad input.
func usageIf(err error, kinds ...error) error {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return usageError{err}
		}
	}
	return err
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "darktime",
		Short:         "Load-test, dark-launch and plan capacity for realtime (SSE) systems",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.Int64(maxInputFlag, report.DefaultMaxBytes,
		"size limit of each result, stats snapshot and shadow ledger file read (YAML files: 1 MiB, fixed)")
	pf.Bool(allowSpecialFlag, false,
		"also read FIFOs, pipes and devices (e.g. <(zcat run.json.gz)); only regular files otherwise")
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	return root
}

// The flags that bound every file a command reads (README: "Input
// limits"), and how a command gets them.
const (
	maxInputFlag     = "max-input-bytes"
	allowSpecialFlag = "allow-special-files"
)

// inputLimits returns the input bounds set on the command line.
func inputLimits(cmd *cobra.Command) (maxBytes int64, allowSpecial bool) {
	maxBytes, _ = cmd.Flags().GetInt64(maxInputFlag)
	allowSpecial, _ = cmd.Flags().GetBool(allowSpecialFlag)
	return maxBytes, allowSpecial
}

// readYAMLFile reads a YAML file (or another small file: a JSON profile,
// a TLS certificate) a command was given: a regular file (or any with
// --allow-special-files) of at most 1 MiB; ctx stops the read.
func readYAMLFile(cmd *cobra.Command, path string) ([]byte, error) {
	_, allowSpecial := inputLimits(cmd)
	return inputfile.Read(cmd.Context(), path, inputfile.Options{
		MaxBytes: yamlsafe.MaxBytes, AllowSpecial: allowSpecial, AllowSpecialHint: "--" + allowSpecialFlag,
	})
}

// yamlReader is readYAMLFile for the packages that take a reader.
func yamlReader(cmd *cobra.Command) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) { return readYAMLFile(cmd, path) }
}

// subcommands is filled by the init functions of the subcommand files.
var subcommands []func() *cobra.Command

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCmd().ExecuteContext(ctx)
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "darktime:", err)
	os.Exit(exitStatus(err))
}

// exitStatus is the status a command's error exits with: 2 for bad input
// (usageError), an exitError's own code, else 1.
func exitStatus(err error) int {
	var ue usageError
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}
