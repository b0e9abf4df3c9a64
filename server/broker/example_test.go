package broker_test

import (
	"context"
	"fmt"

	"github.com/darktime/darktime/internal/eventid"
	"github.com/darktime/darktime/server/broker"
)

// Publishing through the in-process broker and resuming from history.
func ExampleMemory() {
	got := make(chan broker.Delivery, 10)
	b, err := broker.NewMemory(broker.Config{Handler: func(d broker.Delivery) { got <- d }, MaxLen: 2})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	ctx := context.Background()
	_ = b.Subscribe(ctx, "news")
	var ids []eventid.ID
	for _, text := range []string{"one", "two", "three"} {
		id, _ := b.Publish(ctx, []broker.Message{{Channel: "news", Body: []byte("data: " + text + "\n")}})
		ids = append(ids, id[0])
	}
	fmt.Printf("live: %q\n", (<-got).Body)

	// History keeps two events: resuming after the first one misses nothing,
	// but resuming from before it does, and says so.
	h, _ := b.History(ctx, "news", ids[0])
	fmt.Println("after one:", len(h.Events), "events, missed:", h.Missed)
	h, _ = b.History(ctx, "news", eventid.ID{Ms: 1})
	fmt.Println("from long ago:", len(h.Events), "events, missed:", h.Missed, h.Reason)
	// Output:
	// live: "data: one\n"
	// after one: 2 events, missed: false
	// from long ago: 2 events, missed: true history_trimmed
}
