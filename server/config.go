package server

import (
	"errors"
	"fmt"
	"time"
)

// ErrConfig is wrapped by every error of Config.Validate.
var ErrConfig = errors.New("server: invalid config")

// Validate refuses values that cannot mean anything: negative sizes and
// durations (zero means the default), a CORS origin that is not
// scheme://host[:port]. Each error names the flag of `darktime server`
// that sets it. New calls it.
func (c Config) Validate() error {
	sizes := []struct {
		v    int64
		name string
		flag string
	}{
		{int64(c.HistoryLength), "HistoryLength", "--history-length"},
		{int64(c.MaxQueueBytes), "MaxQueueBytes", "--max-queue"},
		{c.MaxBodyBytes, "MaxBodyBytes", "--max-body"},
		{int64(c.MaxChannels), "MaxChannels", "--max-channels"},
		{c.MaxHookBytes, "MaxHookBytes", "--max-hook-body"},
		{c.QueueMaxLen, "QueueMaxLen", "--queue-max-len"},
		{int64(c.QueuePartitions), "QueuePartitions", "--queue-partitions"},
		{int64(c.QueueMaxAttempts), "QueueMaxAttempts", "--max-attempts"},
		{int64(c.Workers), "Workers", "--workers"},
	}
	for _, s := range sizes {
		if s.v < 0 {
			return fmt.Errorf("%w: %s (%s) is %d; it cannot be negative (0 means the default)", ErrConfig, s.flag, s.name, s.v)
		}
	}
	durations := []struct {
		v    time.Duration
		name string
		flag string
	}{
		{c.HistoryAge, "HistoryAge", "--history-age"},
		{c.KeepAlive, "KeepAlive", "--keepalive"},
		{c.RetryHint, "RetryHint", "--retry"},
		{c.WriteTimeout, "WriteTimeout", "--write-timeout"},
		{c.QueueVisibility, "QueueVisibility", "--visibility-timeout"},
		{c.ShutdownJitter, "ShutdownJitter", "--shutdown-jitter"},
		{c.ChannelIdle, "ChannelIdle", "(no flag)"},
	}
	for _, d := range durations {
		if d.v < 0 {
			return fmt.Errorf("%w: %s (%s) is %v; it cannot be negative (0 means the default)", ErrConfig, d.flag, d.name, d.v)
		}
	}
	if _, err := newCrossOrigin(c.CORSOrigins); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}
