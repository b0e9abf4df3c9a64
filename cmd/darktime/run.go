package main

import (
	"errors"

	"github.com/spf13/cobra"

	"github.com/darktime/darktime/scenario"
)

func init() { subcommands = append(subcommands, newRunCmd) }

// errRunNotImplemented is what `darktime run` without --check says until
// the runner exists.
var errRunNotImplemented = errors.New("running scenarios is not implemented yet; use --check")

func newRunCmd() *cobra.Command {
	var check, skipBinaries bool
	cmd := &cobra.Command{
		Use:   "run [--check] FILE...",
		Short: "Run a scenario (scenarios/NAME.yaml); --check only validates it",
		Long: `Check scenario files: the schema (version 1, scenarios/README.md), every
value, faults against the run and its nodes, thresholds against the report's
metric vocabulary, and what this machine allows (open files, ephemeral ports,
nginx for start: nchan, redis-server for broker: redis).

  darktime run --check scenarios/*.yaml

Exit status: 0 when every file checks, 2 when any does not (each problem is
printed as FILE:LINE:COLUMN: PATH: what is wrong and what to do).
Running a scenario is not implemented yet.`,
		Args: func(_ *cobra.Command, files []string) error {
			if len(files) == 0 {
				return usagef("give at least one scenario FILE, e.g. darktime run --check scenarios/*.yaml")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, files []string) error {
			opts := scenario.Options{SkipBinaries: skipBinaries}
			if err := scenario.CheckFiles(cmd.OutOrStdout(), cmd.ErrOrStderr(), files, opts); err != nil {
				return usageError{err}
			}
			if !check {
				return usageError{errRunNotImplemented}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "validate the files and exit: 0 valid, 2 invalid")
	cmd.Flags().BoolVar(&skipBinaries, "skip-binary-check", false, "do not look for nginx or redis-server (checking scenarios meant for another machine)")
	return cmd
}
