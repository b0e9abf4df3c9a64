package fanoutbench

import (
	"context"
	"fmt"
	"time"
)

func ExampleRun() {
	srv := startTestBroker(&testBroker{}) // any server with /sub/{channel} and /pub?id={channel}
	defer srv.Close()

	res, err := Run(context.Background(), Config{
		Target:      srv.URL,
		Subscribers: 20,
		Channels:    2,
		Rate:        20, // events/s in total: 10 per channel, each to 10 subscribers
		Duration:    500 * time.Millisecond,
		Settle:      10 * time.Millisecond,
		Drain:       200 * time.Millisecond,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("connected:", res.SubscribersConnected)
	fmt.Println("every event reached every subscriber:", res.ReceivedDeliveries == res.ExpectedDeliveries && res.ExpectedDeliveries > 0)
	fmt.Println("lost:", res.LostDeliveries, "duplicated:", res.DuplicatedDeliveries)
	// Output:
	// connected: 20
	// every event reached every subscriber: true
	// lost: 0 duplicated: 0
}
