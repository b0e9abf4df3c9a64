// Package batcherr describes the per-item errors of a batch that was done
// in part (a Redis Cluster batch over several shards): the broker's and
// the job queue's PartialError share it.
package batcherr

// Summary counts the items of a batch that failed (a non-nil error) and
// returns the first failure.
func Summary(errs []error) (failed int, first error) {
	for _, err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	return failed, first
}
