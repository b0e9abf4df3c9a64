package shadow

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestFlagsLoad(t *testing.T) {
	t.Parallel()
	defaults := Flags{Listen: DefaultListen, Admin: DefaultAdmin, Mode: "mirror", Percent: "0", Key: "ip"}

	// Without a file every flag counts: its value or its default.
	f := defaults
	f.Primary, f.Candidate, f.Percent, f.Key = "http://127.0.0.1:1", "http://127.0.0.1:2", "12.5", "cookie:uid"
	cfg, err := f.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != DefaultListen || cfg.Mode != ModeMirror || cfg.Percent != 12.5 || cfg.Key.From != "cookie" || cfg.Key.Name != "uid" {
		t.Errorf("without a file: %+v", cfg)
	}
	f.Redis, f.Fleet = "redis://127.0.0.1:6379/0", "eu-1"
	if cfg, err = f.Load(context.Background()); err != nil || cfg.Fleet != (FleetConfig{Redis: "redis://127.0.0.1:6379/0", Name: "eu-1"}) {
		t.Errorf("--redis --fleet: %+v, %v", cfg.Fleet, err)
	}
	f.Fleet = "eu 1"
	if _, err = f.Load(context.Background()); err == nil {
		t.Errorf("fleet name with a space accepted")
	}
	f.Redis, f.Fleet = "", ""

	// With a file, only the flags given replace its values.
	file := filepath.Join(t.TempDir(), "shadow.yaml")
	yaml := "primary: http://127.0.0.1:1\ncandidate: http://127.0.0.1:2\nmode: divert\npercent: 5\nlisten: 127.0.0.1:7000\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	f = defaults
	f.ConfigFile, f.Candidate = file, "http://127.0.0.1:3"
	f.Changed = func(name string) bool { return name == "candidate" }
	if cfg, err = f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if cfg.Candidate != "http://127.0.0.1:3" || cfg.Mode != ModeDivert || cfg.Percent != 5 || cfg.Listen != "127.0.0.1:7000" || cfg.Admin != DefaultAdmin {
		t.Errorf("flags over the file: %+v", cfg)
	}
}
