package canary

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/darktime/darktime/shadow/judge"
)

// hookPayload is the JSON body POSTed to a webhook (SCHEMA.md).
type hookPayload struct {
	Event    string         `json:"event"` // confirm_promotion or rollback
	Step     string         `json:"step"`
	Next     string         `json:"next,omitempty"`
	Epoch    int64          `json:"epoch"`
	Decision string         `json:"decision"`
	Reason   string         `json:"reason"`
	Verdict  *judge.Verdict `json:"verdict,omitempty"`
}

// confirm asks the confirm_promotion webhook before step i is promoted
// to the next; "" is a yes (or no webhook, or no next step), anything
// else why not.
func (c *Canary) confirm(ctx context.Context, i int, sr *StepResult, v judge.Verdict) string {
	h := c.plan.Webhooks.ConfirmPromotion
	if h == nil || i+1 == len(c.plan.Steps) {
		return ""
	}
	next := c.plan.Steps[i+1].Name
	call := c.callHook(ctx, h, hookPayload{Event: "confirm_promotion", Step: sr.Name, Next: next, Epoch: sr.Epoch,
		Decision: string(v.Decision), Reason: v.Reason, Verdict: &v})
	sr.Confirmations = append(sr.Confirmations, call)
	if call.Error == "" && call.Status/100 == 2 {
		return ""
	}
	why := fmt.Sprintf("the confirm_promotion webhook answered %d", call.Status)
	if call.Error != "" {
		why = "the confirm_promotion webhook failed: " + call.Error
	}
	fmt.Fprintf(c.out, "  %s: promotion to %s blocked: %s\n", sr.Name, next, why)
	return "promotion to " + next + " blocked: " + why
}

// callHook POSTs the payload, bounded by the webhook's timeout.
func (c *Canary) callHook(ctx context.Context, h *Webhook, body hookPayload) HookCall {
	call := HookCall{At: c.now()}
	data, err := json.Marshal(body)
	if err != nil {
		call.Error = err.Error()
		return call
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(data))
	if err != nil {
		call.Error = err.Error()
		return call
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		call.Error = strings.ReplaceAll(err.Error(), h.URL, redact(h.URL))
		c.log.Warn("canary webhook", "event", body.Event, "err", call.Error)
		return call
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	call.Status = resp.StatusCode
	return call
}

// redact drops a URL's query, where webhook secrets often are.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i] + "?…"
	}
	return u
}
