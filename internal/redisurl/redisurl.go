// Package redisurl turns the --redis flag into a go-redis client: a
// redis:// or rediss:// URL is one Redis, a redis+cluster:// (or
// rediss+cluster://) URL with comma-separated seed nodes is a Redis Cluster.
//
//	redis://[user:pass@]host:port/db
//	redis+cluster://[user:pass@]host1:port,host2:port[?opts]
//
// A cluster URL names some of the cluster's nodes (one is enough: the
// client learns the rest); it has no database number (a cluster has only 0).
package redisurl

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// IsCluster reports whether raw names a Redis Cluster.
func IsCluster(raw string) bool {
	return strings.HasPrefix(raw, "redis+cluster://") || strings.HasPrefix(raw, "rediss+cluster://")
}

// Options is what a URL asks for: exactly one of Single and Cluster is set.
type Options struct {
	Single  *redis.Options
	Cluster *redis.ClusterOptions
}

// Parse reads a --redis URL.
func Parse(raw string) (Options, error) {
	if !IsCluster(raw) {
		o, err := redis.ParseURL(raw)
		if err != nil {
			return Options{}, err
		}
		return Options{Single: o}, nil
	}
	scheme, rest, _ := strings.Cut(raw, "+cluster://")
	userinfo, hostsAndMore := "", rest
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		userinfo, hostsAndMore = rest[:at+1], rest[at+1:]
	}
	hosts, tail := hostsAndMore, ""
	if i := strings.IndexAny(hostsAndMore, "/?"); i >= 0 {
		hosts, tail = hostsAndMore[:i], hostsAndMore[i:]
	}
	if path, _, _ := strings.Cut(tail, "?"); path != "" && path != "/" && path != "/0" {
		return Options{}, fmt.Errorf("a cluster URL has no database (a Redis Cluster has only db 0), got %q", path)
	}
	addrs := strings.Split(hosts, ",")
	if len(addrs) == 0 || addrs[0] == "" {
		return Options{}, fmt.Errorf("a cluster URL names at least one node: %s+cluster://host:port,host:port", scheme)
	}
	q := ""
	if _, query, ok := strings.Cut(tail, "?"); ok {
		q = query
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return Options{}, err
	}
	for _, a := range addrs[1:] {
		if a == "" {
			return Options{}, fmt.Errorf("empty node address in %q", Redact(raw))
		}
		vals.Add("addr", a)
	}
	u := scheme + "://" + userinfo + addrs[0]
	if len(vals) > 0 {
		u += "?" + vals.Encode()
	}
	o, err := redis.ParseClusterURL(u)
	if err != nil {
		return Options{}, err
	}
	return Options{Cluster: o}, nil
}

// New makes the client the URL asks for. maxRetries is go-redis's
// MaxRetries (-1: none).
func New(raw string, maxRetries int) (redis.UniversalClient, error) {
	o, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("bad Redis URL %q: %w", Redact(raw), err)
	}
	if o.Cluster != nil {
		o.Cluster.MaxRetries = maxRetries
		return redis.NewClusterClient(o.Cluster), nil
	}
	o.Single.MaxRetries = maxRetries
	return redis.NewClient(o.Single), nil
}

// Redact hides the password of a URL, for messages.
func Redact(raw string) string {
	sep, at := strings.Index(raw, "://"), strings.LastIndex(raw, "@")
	if sep < 0 || at < sep {
		return raw
	}
	if name, _, ok := strings.Cut(raw[sep+3:at], ":"); ok {
		return raw[:sep+3] + name + ":xxxxx" + raw[at:]
	}
	return raw
}
