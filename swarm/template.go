package swarm

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// ErrTemplate marks a bad subscribe or publish template or profile; the
// CLI reports it as a usage error.
var ErrTemplate = errors.New("bad target template")

// Placeholders a template may hold. Any other "{word}" is an error; a "{"
// that does not open a known-looking placeholder (as in a JSON body) is
// literal text.
const (
	phTarget   = "target"   // the --target base URL, without a trailing slash
	phChannel  = "channel"  // one channel name
	phChannels = "channels" // the client's channels joined by Profile.ChannelSeparator
	phClient   = "client"   // the client's index in the whole run (0 to Clients-1), the same across reconnects and part splits
	phSeq      = "seq"      // the event's sequence number within its channel
	phTS       = "ts"       // the intended send time, Unix nanoseconds
	phPayload  = "payload"  // padding ('x' repeated) up to the event size
	phToken    = "token"    // a JWT minted for the client at every connect (Config.Token)
)

// defaultBody is a JSON body that every built-in profile publishes as is.
const defaultBody = `{"ch":"{channel}","seq":{seq},"ts":{ts},"pad":"{payload}"}`

var defaultExtract = Extract{Seq: `"seq":`, TS: `"ts":`, Channel: `"ch":"`}

// Profiles are the built-in targets.
var builtinProfiles = map[string]Profile{
	// darktime's reference server: several channels per connection, the
	// body published untouched as text (a JSON Content-Type would make it
	// a batch).
	"darktime": {
		Name:             "darktime",
		Subscribe:        "{target}/sub/{channels}",
		ChannelSeparator: "/",
		ChannelPattern:   `^[A-Za-z0-9_:.-]{1,128}$`,
		Publish: PublishTemplate{
			Method:  "POST",
			URL:     "{target}/pub?id={channel}",
			Headers: []string{"Content-Type: text/plain"},
			Body:    defaultBody,
		},
		Extract:   defaultExtract,
		EventType: "message",
		Notices:   "darktime.",
	},
	// darktime's whole hook pipeline: each event is a post_save hook
	// posted to /hooks, queued, run through the default pipeline
	// (server/pipeline/default.yaml) by the workers and published on the
	// post's thread, forum and author channels; clients subscribe to the
	// thread. Latency covers queue and workers. seq and ts travel in the
	// post's message, which the pipeline delivers as is.
	"darktime-hooks": {
		Name:           "darktime-hooks",
		Subscribe:      "{target}/sub/thread:{channel}",
		ChannelPattern: `^[A-Za-z0-9_.-]{1,120}$`,
		Publish: PublishTemplate{
			Method:  "POST",
			URL:     "{target}/hooks",
			Headers: []string{"Content-Type: application/json"},
			Body:    `{"model":"post","action":"post_save","id":"{channel}-{seq}","thread":"{channel}","forum":"swarm","author":"swarm","message":"seq={seq} ts={ts} pad={payload}"}`,
		},
		Extract:   Extract{Seq: "seq=", TS: "ts="},
		EventType: "post.saved",
		Notices:   "darktime.",
	},
	// nginx + nchan as configured in internal/nchanconf/nchan-nginx.conf:
	// one channel per connection, channel names \w+.
	"nchan": {
		Name:           "nchan",
		Subscribe:      "{target}/sub/{channel}",
		ChannelPattern: `^\w+$`,
		Publish: PublishTemplate{
			Method:  "POST",
			URL:     "{target}/pub?id={channel}",
			Headers: []string{"Content-Type: text/plain"},
			Body:    defaultBody,
		},
		Extract: defaultExtract,
	},
}

// LookupProfile returns a built-in profile by name.
func LookupProfile(name string) (Profile, bool) {
	p, ok := builtinProfiles[name]
	return p, ok
}

// ProfileNames lists the built-in profiles.
func ProfileNames() []string { return []string{"darktime", "darktime-hooks", "nchan"} }

// template is a compiled template: literal text and placeholders.
type template struct {
	parts []tmplPart
	src   string
}

type tmplPart struct {
	lit string
	ph  string // "" for a literal part
}

var placeholderRE = regexp.MustCompile(`^\{([a-z_]+)\}`)

// parseTemplate compiles s, allowing only the given placeholders.
func parseTemplate(what, s string, allowed ...string) (template, error) {
	t := template{src: s}
	var lit strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '{' {
			if m := placeholderRE.FindStringSubmatch(s[i:]); m != nil {
				name := m[1]
				ok := false
				for _, a := range allowed {
					ok = ok || a == name
				}
				if !ok {
					return t, fmt.Errorf("%w: %s %q: unknown placeholder {%s} (allowed: {%s})", ErrTemplate, what, s, name, strings.Join(allowed, "}, {"))
				}
				if lit.Len() > 0 {
					t.parts = append(t.parts, tmplPart{lit: lit.String()})
					lit.Reset()
				}
				t.parts = append(t.parts, tmplPart{ph: name})
				i += len(m[0])
				continue
			}
		}
		lit.WriteByte(s[i])
		i++
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, tmplPart{lit: lit.String()})
	}
	return t, nil
}

func (t template) has(ph string) bool {
	for _, p := range t.parts {
		if p.ph == ph {
			return true
		}
	}
	return false
}

// values fill a template's placeholders.
type values struct {
	target   string
	channel  string
	channels string
	client   int
	seq, ts  int64
	payload  int    // bytes of padding
	token    string // {token}
}

// padding fills {payload}, a block at a time.
var padding = bytes.Repeat([]byte{'x'}, 4096)

func (t template) append(dst []byte, v *values) []byte {
	for _, p := range t.parts {
		switch p.ph {
		case "":
			dst = append(dst, p.lit...)
		case phTarget:
			dst = append(dst, v.target...)
		case phChannel:
			dst = append(dst, v.channel...)
		case phChannels:
			dst = append(dst, v.channels...)
		case phClient:
			dst = strconv.AppendInt(dst, int64(v.client), 10)
		case phSeq:
			dst = strconv.AppendInt(dst, v.seq, 10)
		case phTS:
			dst = strconv.AppendInt(dst, v.ts, 10)
		case phToken:
			dst = append(dst, v.token...)
		case phPayload:
			for n := v.payload; n > 0; n -= min(n, len(padding)) {
				dst = append(dst, padding[:min(n, len(padding))]...)
			}
		}
	}
	return dst
}

func (t template) expand(v *values) string { return string(t.append(nil, v)) }

// compiledProfile is a Profile ready to use.
type compiledProfile struct {
	Profile
	subscribe  template
	pubURL     template
	pubBody    template
	pubHeaders []compiledHeader
	subHeaders []compiledHeader
	// tokenInURL and tokenInHeaders say where {token} goes.
	tokenInURL, tokenInHeaders bool
	channelRE                  *regexp.Regexp
	// bodyFixed is the body length without padding, for sizing events.
	bodyFixed int
	multi     bool // clients may hold several channels
	// batchHead, batchSep and batchTail wrap and join the events of a
	// request (Publish.Batch).
	batchHead, batchSep, batchTail string
}

// phEvents is where BatchBody puts the events of a request.
const phEvents = "{events}"

// compileBatch splits Publish.BatchBody around {events}.
func (c *compiledProfile) compileBatch() error {
	p := c.Publish
	if p.Batch == 0 {
		if p.BatchBody != "" || p.BatchSeparator != "" {
			return fmt.Errorf("%w: profile %q: a batch body or separator without a batch size (--publish-batch)", ErrTemplate, c.Name)
		}
		return nil
	}
	body, sep := p.BatchBody, p.BatchSeparator
	if body == "" {
		body = "[" + phEvents + "]"
	}
	if sep == "" {
		sep = ","
	}
	head, tail, ok := strings.Cut(body, phEvents)
	if !ok || strings.Contains(tail, phEvents) {
		return fmt.Errorf("%w: profile %q: batch body %q must hold %s once, where the events go", ErrTemplate, c.Name, body, phEvents)
	}
	for _, t := range append([]template{c.pubURL}, headerValues(c.pubHeaders)...) {
		for _, ph := range []string{phChannel, phSeq, phTS} {
			if t.has(ph) {
				return fmt.Errorf("%w: profile %q: %q holds {%s}, but a batch carries events of several channels and seqs: with --publish-batch, {channel}, {seq} and {ts} may only be in the body", ErrTemplate, c.Name, t.src, ph)
			}
		}
	}
	c.batchHead, c.batchSep, c.batchTail = head, sep, tail
	return nil
}

func headerValues(hs []compiledHeader) []template {
	out := make([]template, len(hs))
	for i, h := range hs {
		out[i] = h.value
	}
	return out
}

type compiledHeader struct {
	name  string
	value template
}

// compile checks a profile and compiles its templates. multi says whether
// some client holds more than one channel.
func compileProfile(p Profile, multi bool) (*compiledProfile, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: profile %q: %s", ErrTemplate, p.Name, fmt.Sprintf(format, args...))
	}
	c := &compiledProfile{Profile: p, multi: multi}
	var err error
	if c.subscribe, err = parseTemplate("subscribe URL", p.Subscribe, phTarget, phChannel, phChannels, phClient, phToken); err != nil {
		return nil, err
	}
	if err := c.compileSubscribeHeaders(); err != nil {
		return nil, err
	}
	switch {
	case multi && p.ChannelSeparator == "":
		return nil, bad("clients hold several channels but the server takes one per connection (no channel separator); use --distribution uniform, zipf or one")
	case multi && !c.subscribe.has(phChannels):
		return nil, bad("subscribe URL %q needs {channels} when clients hold several channels", p.Subscribe)
	case !c.subscribe.has(phChannel) && !c.subscribe.has(phChannels):
		return nil, bad("subscribe URL %q needs {channel} or {channels}", p.Subscribe)
	}
	if c.pubURL, err = parseTemplate("publish URL", p.Publish.URL, phTarget, phChannel, phSeq, phTS); err != nil {
		return nil, err
	}
	if strings.Contains(p.Publish.URL, "#") {
		return nil, bad("publish URL %q must not hold a fragment", p.Publish.URL)
	}
	if c.pubBody, err = parseTemplate("publish body", p.Publish.Body, phChannel, phSeq, phTS, phPayload); err != nil {
		return nil, err
	}
	if !c.pubBody.has(phSeq) || !c.pubBody.has(phTS) {
		return nil, bad("publish body %q needs {seq} and {ts}: clients read them back to detect loss and measure latency", p.Publish.Body)
	}
	method := p.Publish.Method
	if method == "" {
		method = "POST"
	}
	if !regexp.MustCompile(`^[A-Z]+$`).MatchString(method) {
		return nil, bad("publish method %q", method)
	}
	c.Publish.Method = method
	hasChannel := c.pubURL.has(phChannel) || c.pubBody.has(phChannel)
	for _, h := range p.Publish.Headers {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
			return nil, bad("publish header %q: want \"Name: value\"", h)
		}
		vt, err := parseTemplate("publish header", strings.TrimSpace(value), phTarget, phChannel, phSeq, phTS)
		if err != nil {
			return nil, err
		}
		hasChannel = hasChannel || vt.has(phChannel)
		c.pubHeaders = append(c.pubHeaders, compiledHeader{name: name, value: vt})
	}
	if !hasChannel {
		return nil, bad("the publish request needs {channel} in its URL, a header or the body")
	}
	if err := c.compileBatch(); err != nil {
		return nil, err
	}
	// Only what can never work is refused here: the markers are checked
	// on what the server delivers (extract.go), which may wrap or unwrap
	// the body the publisher sends.
	if p.Extract.Seq == "" || p.Extract.TS == "" {
		return nil, bad("extract needs the text before seq and before ts")
	}
	if p.Extract.Seq == p.Extract.TS {
		return nil, bad("extract has the same marker %q for seq and ts: both would read the same number", p.Extract.Seq)
	}
	if multi && p.Extract.Channel == "" {
		return nil, bad("clients hold several channels: extract.channel must give the text before the channel name")
	}
	if p.ChannelPattern != "" {
		if c.channelRE, err = regexp.Compile(p.ChannelPattern); err != nil {
			return nil, bad("channel pattern: %v", err)
		}
	}
	sample := values{target: "http://127.0.0.1:1", channel: "ch_1", channels: "ch_1", client: 7, seq: 12345, ts: 1700000000123456789}
	c.bodyFixed = len(c.pubBody.append(nil, &sample))
	for _, t := range []template{c.subscribe, c.pubURL} {
		u, err := url.Parse(t.expand(&sample))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, bad("%q does not expand to an http(s) URL", t.src)
		}
	}
	return c, nil
}
