package resultfile

import (
	"fmt"
	"strings"
)

// Profile describes how to talk to one kind of SSE server.
type Profile struct {
	// Name identifies the profile in results.
	Name string `json:"name"`
	// Subscribe is the subscribe URL template ({target}, {channel} or
	// {channels}, and {client}: the client's index in the whole run, the
	// same across its reconnects whatever the part split); plain http only.
	Subscribe string `json:"subscribe"`
	// SubscribeHeaders are extra subscribe request headers ("Name:
	// value"), with {client} and {token} (swarm.Config.Token). With a token and
	// {token} in neither, "Authorization: Bearer {token}" is sent.
	SubscribeHeaders []string `json:"subscribe_headers,omitempty"`
	// ChannelSeparator joins a client's channels in {channels}; empty means
	// the server takes one channel per connection.
	ChannelSeparator string `json:"channel_separator,omitempty"`
	// ChannelPattern is a regular expression every generated channel name
	// must match (nchan's config routes only \w+).
	ChannelPattern string `json:"channel_pattern,omitempty"`
	// Publish is the publish request template.
	Publish PublishTemplate `json:"publish"`
	// Extract says where the sequence number, the timestamp and the channel
	// are found in the data of a received event.
	Extract Extract `json:"extract"`
	// EventType, when set, is the only event type measured; others are
	// counted as other_type (darktime's own darktime.* notices, say).
	// Empty means the default type, "message".
	EventType string `json:"event_type,omitempty"`
	// Notices is the event-type prefix of the server's control events
	// ("darktime." for the reference server's darktime.missed and
	// darktime.reconnect): they are counted as notices, not other_type, and
	// a <Notices>missed event announces a gap on the channel its JSON data
	// names ({"channel": …}), so that the loss is reported as announced.
	Notices string `json:"notices,omitempty"`
}

// PublishTemplate is an HTTP request with placeholders in the URL, the
// header values and the body.
type PublishTemplate struct {
	Method  string   `json:"method"`
	URL     string   `json:"url"`
	Headers []string `json:"headers,omitempty"` // "Name: value"
	Body    string   `json:"body"`
	// Batch, when set, makes every request carry Batch events (the last
	// one of a run with swarm.Config.Events may carry fewer): Body is
	// filled once per event, each with its own channel, seq and ts, the
	// results joined by BatchSeparator (default ",") and put in BatchBody
	// where it says {events} (default "[{events}]", a JSON array). The
	// events of one request share its outcome: a server that takes a batch
	// whole or not at all (darktime's /hooks and JSON /pub). The URL and
	// headers may then not hold {channel}, {seq} or {ts}. Zero: one event
	// per request, Body as is.
	Batch          int    `json:"batch,omitempty"`
	BatchBody      string `json:"batch_body,omitempty"`
	BatchSeparator string `json:"batch_separator,omitempty"`
}

// Extract holds the literal text that precedes each field in the data of a
// received event, as the server delivers it (which need not be the body as
// published): the decimal seq follows Seq, the decimal timestamp follows
// TS, and the channel name follows Channel up to the next '"' or `\"`.
// Channel is needed only when clients hold several channels. The markers
// are checked on the first events a run receives (Result.ExtractFailure).
type Extract struct {
	Seq     string `json:"seq"`
	TS      string `json:"ts"`
	Channel string `json:"channel,omitempty"`
	// JSONString says the data carries the published body inside a JSON
	// string, escaped (a GRIP proxy's or a broker's JSON envelope:
	// {"channel":"c","data":"{\"seq\":1,...}"}): the markers are then
	// matched with the data's string escapes undone (\" \\ \/ \n \uXXXX
	// ...), so the natural markers of the body work.
	JSONString bool `json:"json_string,omitempty"`
}

// TokenEcho is swarm.Config.Token in a result: how tokens were made, without
// the key.
type TokenEcho struct {
	Algorithm  string  `json:"algorithm"`
	TTLSeconds float64 `json:"ttl_seconds"`
	// Key says where the key came from: "env:NAME", "file:PATH" or
	// "config".
	Key      string `json:"key"`
	Issuer   string `json:"issuer,omitempty"`
	Audience string `json:"audience,omitempty"`
}

// ExtractFailure reports that none of the first events a run received
// could be read with the profile's extract markers: the markers do not
// match what the server delivers.
type ExtractFailure struct {
	// Events is how many events were examined (the run's first, up to 3).
	Events int `json:"events"`
	// Fields are the markers that found nothing in the first of them:
	// "seq", "ts", "channel".
	Fields []string `json:"fields"`
	// Markers are the profile's extract settings.
	Markers Extract `json:"markers"`
	// Sample is the start of the first event's data, at most 120 bytes
	// ("…" marks a cut).
	Sample string `json:"sample"`
}

// String is the warning the summaries print, on one line: markers and
// data between backticks, as they are (line breaks shown as \n).
func (f *ExtractFailure) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "none of the first %d event(s) received could be read: ", f.Events)
	for i, field := range f.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (marker `%s`)", field, oneLine.Replace(f.Markers.marker(field)))
	}
	fmt.Fprintf(&b, " not found in the data, which starts `%s`; set --extract-seq/--extract-ts/--extract-channel to the text before each field as it arrives", oneLine.Replace(f.Sample))
	if !f.Markers.JSONString && strings.Contains(f.Sample, `\"`) {
		b.WriteString(", or --extract-json-string: the data carries the body as an escaped JSON string")
	}
	return b.String()
}

var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

func (e Extract) marker(field string) string {
	switch field {
	case "seq":
		return e.Seq
	case "ts":
		return e.TS
	}
	return e.Channel
}
