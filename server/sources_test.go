package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSourcesApply(t *testing.T) {
	dir := t.TempDir()
	badPipelines := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badPipelines, []byte("models: [1, 2]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func(path string) ([]byte, error) { return os.ReadFile(path) }
	env := map[string]string{"DARKTIME_PUBLISH_TOKEN": "pub", "DARKTIME_ADMIN_TOKEN": "adm"}
	getenv := func(k string) string { return env[k] }

	t.Run("defaults and the environment", func(t *testing.T) {
		var cfg Config
		if err := (Sources{Read: read, Getenv: getenv}).Apply(&cfg, Listen{}); err != nil {
			t.Fatal(err)
		}
		if cfg.PublishToken != "pub" || cfg.AdminToken != "adm" {
			t.Errorf("tokens %q %q, want them from the environment", cfg.PublishToken, cfg.AdminToken)
		}
		if cfg.Pipelines == nil || cfg.Authorizer != nil {
			t.Errorf("want the default pipelines and no authorizer, got %v %v", cfg.Pipelines, cfg.Authorizer)
		}
	})
	t.Run("a flag wins over the environment", func(t *testing.T) {
		cfg := Config{PublishToken: "flag"}
		if err := (Sources{Read: read, Getenv: getenv}).Apply(&cfg, Listen{}); err != nil {
			t.Fatal(err)
		}
		if cfg.PublishToken != "flag" {
			t.Errorf("publish token %q, want the flag's", cfg.PublishToken)
		}
	})
	for _, tc := range []struct {
		name string
		src  Sources
		l    Listen
		want string
	}{
		{"missing pipelines", Sources{PipelinesFile: filepath.Join(dir, "none.yaml")}, Listen{}, "--pipelines: "},
		{"bad pipelines", Sources{PipelinesFile: badPipelines}, Listen{}, "--pipelines: " + badPipelines},
		{"missing auth", Sources{AuthFile: filepath.Join(dir, "none.yaml")}, Listen{}, "--auth: "},
		{"bad proxy", Sources{TrustedProxies: []string{"not an address"}}, Listen{}, "--trusted-proxy: "},
		{"missing cert", Sources{}, Listen{TLSCert: filepath.Join(dir, "none.pem"), TLSKey: filepath.Join(dir, "none.key")}, "--tls-cert: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.src.Read, tc.src.Getenv = read, getenv
			var cfg Config
			err := tc.src.Apply(&cfg, tc.l)
			if !errors.Is(err, ErrConfig) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrConfig starting %q", err, tc.want)
			}
		})
	}
}
