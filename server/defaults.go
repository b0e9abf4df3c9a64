package server

import (
	"time"

	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/queue"
)

// The defaults of Config (its zero values mean them) and of Listen; the
// flags of `darktime server` show the same constants, so each default is
// written once.
const (
	DefaultHistoryLength  = broker.DefaultMaxLen
	DefaultHistoryAge     = broker.DefaultMaxAge
	DefaultRedisPrefix    = broker.DefaultPrefix
	DefaultKeepAlive      = 15 * time.Second
	DefaultRetryHint      = 2 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultMaxQueueBytes  = 256 << 10
	DefaultMaxBodyBytes   = 64 << 10
	DefaultMaxChannels    = 32
	DefaultMaxHookBytes   = 1 << 20
	DefaultShutdownJitter = time.Second
	DefaultShardQueue     = 8192
	DefaultChannelIdle    = 10 * time.Second

	DefaultQueueName        = queue.DefaultName
	DefaultQueueVisibility  = queue.DefaultVisibilityTimeout
	DefaultQueueMaxAttempts = queue.DefaultMaxAttempts

	// DefaultListen and DefaultShutdownTimeout are Listen's.
	DefaultListen          = "127.0.0.1:8080"
	DefaultShutdownTimeout = 10 * time.Second
)
