package swarm

import (
	"errors"
	"strings"
	"testing"
)

func FuzzTemplate(f *testing.F) {
	for _, p := range builtinProfiles {
		f.Add(p.Subscribe, p.Publish.URL, p.Publish.Body, p.Extract.Seq, p.Extract.TS, "Content-Type: text/plain")
	}
	f.Add("{target}/s?c={channel}", "{target}/p/{channel}", "seq={seq}&ts={ts}{payload}", "seq=", "ts=", "X: {channel}")
	f.Add("{target}/{nope}", "{{", "{seq}{ts}", "", "", ":")
	f.Add("{target}/sub/{channels}?uid={client}", "{target}/pub?id={channel}", defaultBody, `"seq":`, `"ts":`, "X-Client: {channel}")
	f.Add("{target}/sub/{channel}", "{target}/pub?id={channel}&u={client}", "{seq} {ts} {client}", "", " ", "X: {client}") // subscribe only
	f.Fuzz(func(t *testing.T, sub, pubURL, body, seqMarker, tsMarker, header string) {
		p := Profile{Name: "fuzz", Subscribe: sub, Publish: PublishTemplate{URL: pubURL, Body: body, Headers: []string{header}},
			Extract: Extract{Seq: seqMarker, TS: tsMarker}}
		c, err := compileProfile(p, false)
		if err != nil {
			if !errors.Is(err, ErrTemplate) {
				t.Fatalf("error %v does not wrap ErrTemplate", err)
			}
			return
		}
		// A profile that compiles expands every placeholder. Whether its
		// markers read what the server delivers is checked at run time
		// (FuzzExtract covers the reading).
		v := values{target: "http://127.0.0.1:9", channel: "c_7", client: 3, seq: 99, ts: 1234567890, payload: 5}
		if strings.Contains(c.subscribe.expand(&v), "{client}") {
			t.Fatalf("placeholder left in %q", c.subscribe.expand(&v))
		}
		_, _, _, _ = c.extract(c.pubBody.append(nil, &v)) // must not panic
		if strings.Contains(c.pubURL.expand(&v), "{channel}") {
			t.Fatalf("placeholder left in %q", c.pubURL.expand(&v))
		}
	})
}
