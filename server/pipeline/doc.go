// Package pipeline turns model hooks into realtime events.
//
// The application POSTs its model hooks (post_save, post_delete) to the
// reference server as JSON objects such as
//
//	{"model":"post","action":"post_save","id":"123","thread":"7","message":"hi"}
//
// The HTTP layer checks them with [ParseHook] or [ParseHookBatch] and
// enqueues them; a worker claims each job, parses it again and runs it
// through the [Pipeline] configured for its model. A pipeline is a list of
// small stages (mixins, in the words of DISQUS's realtime backend), each of
// which reads and changes an [Item] and passes it on: [NewValidate] checks
// it, [NewEnrich] adds computed fields, [NewDrop] discards it, [NewFormat]
// renders the JSON browsers get and [NewRoute] picks the channels it is
// published on. The worker publishes the resulting [Event]s (channel, SSE
// event name, data) and acks the job.
//
// # Outcomes
//
// A stage returns nil to pass the item on, or
//   - [Drop](reason): the job is done and nothing is published;
//   - [Reject](err), or any error wrapping [ErrReject]: the job can never
//     succeed (bad data, unknown model, bad channel name) and the worker
//     dead-letters it without retrying;
//   - any other error: the failure is transient and the worker retries.
//
// [Pipeline.Run] reports drops in [Result] and returns the errors, so a
// worker only needs [IsReject] to choose between retry and dead letter.
//
// # Configuration
//
// Pipelines are usually configured in YAML (see [LoadConfig] and
// [DefaultConfig]): each model names an ordered list of stages, and each
// stage is a one-key mapping from a stage kind to its options:
//
//	models:
//	  post:
//	    stages:
//	      - validate: {required: [thread, forum, author]}
//	        only: [post_save]   # optional: run this stage for these actions only
//	      - drop: {when: {is_spam: true}}
//	      - format: {fields: [id, thread, forum, author, message], envelope: true}
//	      - route: {channels: ["thread:{thread}", "forum:{forum}", "user:{author}"]}
//
// Programs add their own stage kinds with [Register] (or a private
// [Registry]); the YAML can then name them like the built-in ones.
//
// # Templates
//
// Route channels, Enrich values and event names are templates: literal text
// with {field} placeholders. A field is a key of the item's document, or a
// dotted path into nested objects ({author.id}). Names starting with $ are
// facts about the hook rather than document fields: {$model}, {$action}
// (post_save), {$verb} (saved or deleted), {$id}, {$event}, {$job},
// {$attempt} and {$received} (the time the hook was received, RFC 3339 in
// UTC with milliseconds). A placeholder whose value is missing, null, empty
// or not a scalar leaves the whole template unrendered: a route skips that
// channel and an enrich skips that field.
//
// Numbers in hooks are kept as [encoding/json.Number], so 64-bit ids pass
// through exactly.
package pipeline
