package canary

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzCohorts: whatever a proxy answers that decodes as a cohorts
// document, the step machine judges it without panicking and the
// document it records still encodes.
func FuzzCohorts(f *testing.F) {
	f.Add([]byte(`{"epoch":1,"primary":{"delay_ms":[1,2,3],"events":20000,"streams":10},"candidate":{"delay_ms":[1,2,3],"events":20000,"streams":10},"baseline":null}`))
	f.Add([]byte(`{"epoch":1,"primary":{"delay_ms":[-5,-5],"events":1},"candidate":{"delay_ms":[-5,1e308],"events":1e18,"unexplained":-3}}`))
	// Clock skew: delays of -5 ms make the tail check's ratio 0/0.
	skew := bytes.Repeat([]byte("-5,"), 1200)
	skew = skew[:len(skew)-1]
	f.Add([]byte(`{"epoch":1,"primary":{"delay_ms":[` + string(skew) + `],"events":20000,"streams":10},"candidate":{"delay_ms":[` + string(skew) + `],"events":20000,"streams":10}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Cohorts
		if json.Unmarshal(data, &c) != nil {
			return
		}
		c.Epoch = 1
		fa := &fakeAdmin{evidence: func(StepRequest, int64, int) (Cohorts, error) { return c, nil }}
		p := testPlan("a")
		p.Steps[0].MaxDuration = time.Millisecond
		cn, err := New(Config{Plan: p, Admin: fa})
		if err != nil {
			t.Fatal(err)
		}
		res, _ := cn.Run(t.Context())
		var buf bytes.Buffer
		if err := res.WriteJSON(&buf); err != nil {
			t.Fatalf("the document does not encode: %v", err)
		}
	})
}
