package server

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
)

// IdempotencyHeader carries a request's idempotency key: sent by the
// client, or assigned by the server, and echoed on every answer of POST
// /pub and POST /hooks (201/202, 503 and 504 alike), so that a client that
// got no certain answer retries with it and the event (the hook) is
// delivered once.
const IdempotencyHeader = "Idempotency-Key"

// maxKeyLen bounds an idempotency key (it becomes part of a Redis key).
const maxKeyLen = 200

// requestKey returns the request's idempotency key, or a fresh random one
// when the client sent none.
func requestKey(r *http.Request) (string, error) {
	key := r.Header.Get(IdempotencyHeader)
	if key == "" {
		return newKey(), nil
	}
	if len(key) > maxKeyLen {
		return "", fmt.Errorf("%s is %d bytes long; at most %d", IdempotencyHeader, len(key), maxKeyLen)
	}
	return key, nil
}

func newKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// itemKey is the key of the i-th item of a batch that has none of its own.
func itemKey(key string, i int) string {
	return fmt.Sprintf("%s#%d", key, i)
}

// uncertainBody is the JSON of a 503 or 504 answer to a publish or a hook.
type uncertainBody struct {
	Error          string `json:"error"`
	Status         int    `json:"status"`
	IdempotencyKey string `json:"idempotency_key"`
	// Outcome is "not_done" (503: nothing happened; retry) or "unknown"
	// (504: it may have happened; retry with the key to make it happen
	// once).
	Outcome string `json:"outcome"`
}

func writeUncertain(w http.ResponseWriter, status int, key, msg string) {
	outcome := "not_done"
	if status == http.StatusGatewayTimeout {
		outcome = "unknown"
	}
	writeJSON(w, status, uncertainBody{Error: msg, Status: status, IdempotencyKey: key, Outcome: outcome})
}
