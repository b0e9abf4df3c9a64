package worker

import (
	"testing"
)

func TestObjectKeyAndRoute(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ payload, want string }{
		{`{"model":"post","action":"post_save","id":42,"thread":1}`, `"post"/42`},
		{`{"id": "a-1", "model": "thread"}`, `"thread"/"a-1"`},
		{`{"model":"post"}`, `"post"/`},
		{`garbage`, `/`},
	} {
		if got := objectKey([]byte(tc.payload)); got != tc.want {
			t.Errorf("objectKey(%s) = %q, want %q", tc.payload, got, tc.want)
		}
	}
	for in, want := range map[string]string{"thread:42": "thread", "user:a:b": "user", "plain": "plain", ":x": ":x"} {
		if got := route(in); got != want {
			t.Errorf("route(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLanesKeepOneObjectTogether(t *testing.T) {
	t.Parallel()
	p, err := New(Config{Queue: nopQueue{}, Publisher: nil, Lanes: 4})
	if err == nil || p != nil {
		t.Fatal("New accepted a nil Publisher")
	}
	p, err = New(Config{Queue: nopQueue{}, Publisher: nopPublisher{}, Lanes: 4})
	if err != nil {
		t.Fatal(err)
	}
	first := p.lane([]byte(`{"model":"post","action":"post_save","id":7,"message":"a"}`))
	for i := 0; i < 100; i++ {
		if got := p.lane([]byte(`{"model":"post","action":"post_delete","id":7,"thread":3}`)); got != first {
			t.Fatalf("hooks of one object went to lanes %d and %d", first, got)
		}
	}
	seen := map[int]bool{}
	for id := 0; id < 200; id++ {
		seen[p.lane([]byte(`{"model":"post","id":`+string(rune('0'+id%10))+string(rune('0'+id/10%10))+`}`))] = true
	}
	if len(seen) != 4 {
		t.Fatalf("100 objects used %d of 4 lanes", len(seen))
	}
}
