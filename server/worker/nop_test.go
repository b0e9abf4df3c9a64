package worker

import (
	"context"
	"time"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/server/broker"
	"github.com/darktime/darktime/server/queue"
)

// nopQueue and nopPublisher only satisfy the interfaces for constructor
// and lane tests; the pool's behaviour is tested against a real Redis in
// package server (hooks_test.go).
type nopQueue struct{}

func (nopQueue) Claim(context.Context, string, int, time.Duration) ([]queue.Job, error) {
	return nil, nil
}
func (nopQueue) Ack(context.Context, ...string) (int, error)        { return 0, nil }
func (nopQueue) Fail(context.Context, queue.Job, error, bool) error { return nil }

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, []broker.Message) ([]eventid.ID, error) {
	return nil, nil
}
