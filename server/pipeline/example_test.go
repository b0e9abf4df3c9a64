package pipeline_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/darktime/darktime/server/pipeline"
)

// A pipeline built in Go: check the hook, drop spam, render the JSON and
// route it to the thread's and the author's channels.
func ExamplePipeline_Run() {
	must := func(s pipeline.Stage, err error) pipeline.Stage {
		if err != nil {
			log.Fatal(err)
		}
		return s
	}
	p := pipeline.Pipeline{
		must(pipeline.NewValidate(pipeline.ValidateConfig{Required: []string{"thread", "author"}})),
		must(pipeline.NewDrop(pipeline.DropConfig{When: map[string]any{"is_spam": true}})),
		must(pipeline.NewFormat(pipeline.FormatConfig{Fields: []string{"id", "thread", "message"}, Envelope: true})),
		must(pipeline.NewRoute(pipeline.RouteConfig{Channels: []string{"thread:{thread}", "user:{author}"}})),
	}

	hook, err := pipeline.ParseHook([]byte(`{"model":"post","action":"post_save","id":123,"thread":"7","author":"42","message":"First!","is_spam":false}`))
	if err != nil {
		log.Fatal(err)
	}
	res, err := p.Run(context.Background(), hook)
	switch {
	case pipeline.IsReject(err):
		log.Fatal("dead-letter: ", err)
	case err != nil:
		log.Fatal("retry: ", err)
	case res.Dropped:
		fmt.Println("dropped:", res.DropReason)
	}
	for _, e := range res.Events {
		fmt.Printf("%s %s %s\n", e.Channel, e.Event, e.Data)
	}
	// Output:
	// thread:7 post.saved {"type":"post","action":"saved","data":{"id":"123","thread":"7","message":"First!"}}
	// user:42 post.saved {"type":"post","action":"saved","data":{"id":"123","thread":"7","message":"First!"}}
}

// A custom stage kind in a few lines: "mask" hides words in a field, and
// the YAML then uses it like a built-in stage. A program would call
// pipeline.Register from an init function and pipeline.LoadConfig; a
// private Registry keeps this example self-contained.
func ExampleRegistry_Register() {
	reg := pipeline.NewRegistry()
	reg.Register("mask", func(decode func(any) error) (pipeline.Stage, error) {
		opts := struct {
			Field string   `yaml:"field"`
			Words []string `yaml:"words"`
		}{Field: "message"}
		if err := decode(&opts); err != nil {
			return nil, err
		}
		return pipeline.StageFunc(func(_ context.Context, it *pipeline.Item) error {
			if s, ok := it.Doc[opts.Field].(string); ok {
				for _, w := range opts.Words {
					s = strings.ReplaceAll(s, w, strings.Repeat("*", len(w)))
				}
				it.Doc[opts.Field] = s
			}
			return nil
		}), nil
	})

	cfg, err := reg.LoadConfig([]byte(`
models:
  post:
    stages:
      - mask: {words: [darn, heck]}
      - format: {fields: [id, message]}
      - route: {channels: ["thread:{thread}"]}
`))
	if err != nil {
		log.Fatal(err)
	}
	hook, err := pipeline.ParseHook([]byte(`{"model":"post","action":"post_save","id":"1","thread":"7","message":"darn it, what the heck"}`))
	if err != nil {
		log.Fatal(err)
	}
	res, err := cfg.Run(context.Background(), hook)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s %s\n", res.Events[0].Channel, res.Events[0].Data)
	// Output:
	// thread:7 {"id":"1","message":"**** it, what the ****"}
}

// A worker sorts each result into publish, ack, retry or dead-letter.
func ExampleConfig_Run() {
	cfg := pipeline.DefaultConfig()
	for _, body := range []string{
		`{"model":"post","action":"post_delete","id":"123","thread":"7"}`,
		`{"model":"post","action":"post_save","id":"124","thread":"7","forum":"f","author":"9","is_spam":true}`,
		`{"model":"vote","action":"post_save","id":"1"}`,
	} {
		hook, err := pipeline.ParseHook([]byte(body))
		if err != nil {
			log.Fatal(err)
		}
		res, err := cfg.Run(context.Background(), hook)
		switch {
		case pipeline.IsReject(err):
			fmt.Println("dead-letter:", err)
		case err != nil:
			fmt.Println("retry:", err)
		case res.Dropped:
			fmt.Println("ack, dropped:", res.DropReason)
		default:
			for _, e := range res.Events {
				fmt.Printf("publish %s %s %s\n", e.Channel, e.Event, e.Data)
			}
		}
	}
	// Output:
	// publish thread:7 post.deleted {"type":"post","action":"deleted","data":{"id":"123","thread":"7"}}
	// ack, dropped: spam
	// dead-letter: unknown model "vote": add it under models: in the pipeline config (known: post, thread)
}
