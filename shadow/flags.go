package shadow

import (
	"context"
	"os"
	"strings"
)

// Flags are the settings `darktime shadow` takes on its command line,
// laid over the config file's (Load).
type Flags struct {
	// ConfigFile, when set, is read first (LoadConfigFileContext);
	// AllowSpecial lets it be a FIFO or a device.
	ConfigFile   string
	AllowSpecial bool
	// Changed reports whether the flag of that name was given; without a
	// file every flag counts as given.
	Changed func(name string) bool

	Listen, Admin, Primary, Candidate, Baseline, LedgerFile string
	// Redis and Fleet are --redis and --fleet: Config.Fleet.
	Redis, Fleet       string
	Mode, Percent, Key string
	MirrorUnsafe       bool
	TrustedProxies     []string
	// AdminToken is --admin-token; without it, the environment's
	// AdminTokenEnv (never a flag default: --help would print it).
	AdminToken string
	// Getenv reads the environment (os.Getenv when nil).
	Getenv func(string) string
}

// Load reads the config file, if any, and lays the flags over it: each
// flag given replaces the file's value, and a flag's default fills what
// the file leaves empty (listen, admin, the targets, the ledger file) —
// mode, percent and key only without a file. The result is validated.
func (f Flags) Load(ctx context.Context) (Config, error) {
	var cfg Config
	var err error
	if f.ConfigFile != "" {
		if cfg, err = LoadConfigFileContext(ctx, f.ConfigFile, f.AllowSpecial); err != nil {
			return cfg, err
		}
	}
	changed := func(name string) bool { return f.Changed != nil && f.Changed(name) }
	given := func(name string) bool { return changed(name) || f.ConfigFile == "" }
	set := func(name string, dst *string, v string) {
		if changed(name) || *dst == "" {
			*dst = v
		}
	}
	set("listen", &cfg.Listen, f.Listen)
	set("admin", &cfg.Admin, f.Admin)
	set("primary", &cfg.Primary, f.Primary)
	set("candidate", &cfg.Candidate, f.Candidate)
	set("baseline", &cfg.Baseline, f.Baseline)
	set("ledger-file", &cfg.Ledger.File, f.LedgerFile)
	set("redis", &cfg.Fleet.Redis, f.Redis)
	set("fleet", &cfg.Fleet.Name, f.Fleet)
	if given("mode") {
		cfg.Mode = Mode(f.Mode)
	}
	if given("percent") {
		if cfg.Percent, err = ParsePercent(f.Percent); err != nil {
			return cfg, err
		}
	}
	if changed("mirror-unsafe") {
		cfg.MirrorUnsafe = f.MirrorUnsafe
	}
	if changed("trusted-proxy") {
		cfg.TrustedProxies = f.TrustedProxies
	}
	if given("key") {
		cfg.Key.From, cfg.Key.Name, _ = strings.Cut(f.Key, ":")
	}
	cfg.AdminToken = f.AdminToken
	if cfg.AdminToken == "" {
		getenv := f.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		cfg.AdminToken = getenv(AdminTokenEnv)
	}
	return cfg, cfg.Validate()
}
