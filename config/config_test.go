package config

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/edge-rt/edge/edge"
)

// shipped is configs/edge.yaml, seen from this package's directory.
const shipped = "../configs/edge.yaml"

// noFile keeps Load from reading any file, whatever the working directory.
var noFile = []string{"--config", ""}

// writeFile writes a config file into a fresh temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustLoad(t *testing.T, args ...string) *Config {
	t.Helper()
	c, err := Load(args)
	if err != nil {
		t.Fatalf("Load(%q): %v", args, err)
	}
	return c
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, noFile...)

	h, _ := os.Hostname()
	if c.Node.ID != h {
		t.Errorf("Node.ID = %q, want hostname %q", c.Node.ID, h)
	}
	if c.File != "" {
		t.Errorf("File = %q, want none", c.File)
	}
	want := defaults()
	want.Node.ID = c.Node.ID
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("Load() =\n%+v\nwant\n%+v", *c, want)
	}
	// The contract values of DESIGN.md, spelled out rather than trusted to
	// defaults().
	checks := []struct {
		name      string
		got, want any
	}{
		{"http.addr", c.HTTP.Addr, "127.0.0.1:8080"},
		{"http.max_body_bytes", c.HTTP.MaxBodyBytes, int64(1 << 20)},
		{"sse.heartbeat", c.SSE.Heartbeat, 15 * time.Second},
		{"sse.max_lifetime", c.SSE.MaxLifetime, 30 * time.Minute},
		{"sse.queue_size", c.SSE.QueueSize, 512},
		{"sse.batch_window", c.SSE.BatchWindow, time.Duration(0)},
		{"uploads.dir", c.Uploads.Dir, "./data/uploads"},
		{"retention.max_events", c.Retention.MaxEvents, 1000},
		{"retention.rules", c.Retention.Rules, []edge.RetentionRule{{Pattern: "room:*", Retention: edge.Retention{MaxEvents: 10000, MaxAge: 168 * time.Hour}}}},
		{"publish.max_event_bytes", c.Publish.MaxEventBytes, int64(64 << 10)},
		{"log.level", c.Log.Level, "info"},
		{"MemoryBroker", c.MemoryBroker(), true},
		{"RedisOptions", c.RedisOptions() == nil, true},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// TestValidateZero checks that the zero Config validates to the defaults,
// so code that builds a Config by hand gets the same node as Load.
func TestValidateZero(t *testing.T) {
	t.Parallel()
	var c Config
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := defaults()
	want.Node.ID = c.Node.ID
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Validate() on zero =\n%+v\nwant\n%+v", c, want)
	}
	again := c
	if err := again.Validate(); err != nil || !reflect.DeepEqual(again, c) {
		t.Errorf("second Validate changed the config or failed: %v", err)
	}
}

func TestFileValues(t *testing.T) {
	t.Parallel()
	p := writeFile(t, `
http:
  addr: ":9000"
  tls_cert: c.pem
  tls_key: k.pem
  cors_origins: ["https://a.example", " https://b.example:8443 "]
redis:
  addrs: ["r1:6379", "r2:6379"]
  sharded_pubsub: true
auth:
  hmac_secrets: [one-0123456789abcdef0123456789abcdef, two-0123456789abcdef0123456789abcdef]
sse:
  heartbeat: 20s
  batch_window: 0
  compression: [gzip, br, gzip]
  max_topics: 8
retention:
  max_events: 50
  rules:
    - pattern: "org:*"
      max_age: 1h
publish:
  max_event_bytes: 1024
log:
  level: DEBUG
  format: json
`)
	c := mustLoad(t, "--config", p)
	checks := []struct {
		name      string
		got, want any
	}{
		{"File", c.File, p},
		{"http.addr", c.HTTP.Addr, ":9000"},
		{"http.tls_cert", c.HTTP.TLSCert, "c.pem"},
		{"http.cors_origins", c.HTTP.CORSOrigins, []string{"https://a.example", "https://b.example:8443"}},
		{"redis.addrs", c.Redis.Addrs, []string{"r1:6379", "r2:6379"}},
		{"redis.sharded_pubsub", c.Redis.ShardedPubSub, true},
		{"auth.hmac_secrets", c.Auth.HMACSecrets, []string{"one-0123456789abcdef0123456789abcdef", "two-0123456789abcdef0123456789abcdef"}},
		{"sse.heartbeat", c.SSE.Heartbeat, 20 * time.Second},
		{"sse.batch_window", c.SSE.BatchWindow, time.Duration(0)},
		{"sse.compression", c.SSE.Compression, []string{"gzip", "br"}},
		{"sse.max_topics", c.SSE.MaxTopics, 8},
		{"sse.retry (untouched)", c.SSE.Retry, 2 * time.Second},
		// A rule's missing max_events takes retention.max_events.
		{"retention.rules", c.Retention.Rules, []edge.RetentionRule{{Pattern: "org:*", Retention: edge.Retention{MaxEvents: 50, MaxAge: time.Hour}}}},
		{"publish.max_event_bytes", c.Publish.MaxEventBytes, int64(1024)},
		{"log.level", c.Log.Level, "debug"},
		{"SlogLevel", c.SlogLevel(), slog.LevelDebug},
		{"log.format", c.Log.Format, "json"},
		{"MemoryBroker", c.MemoryBroker(), false},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestEmptyRulesMeansNone(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, "--config", writeFile(t, "retention:\n  rules: []\n"))
	if c.Retention.Rules == nil || len(c.Retention.Rules) != 0 {
		t.Fatalf("rules = %#v, want an empty list", c.Retention.Rules)
	}
	if got := c.RetentionPolicy().For("room:1"); got != (edge.Retention{MaxEvents: 1000, MaxAge: 5 * time.Minute}) {
		t.Errorf("room:1 retention = %+v, want the default", got)
	}
}

// TestPrecedence covers flag > env > file > default. It sets process
// environment variables, so it cannot run in parallel.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
redis:
  addrs: ["file:1"]
sse:
  heartbeat: 20s
  retry: 3s
  queue_size: 100
`)
	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		check func(t *testing.T, c *Config)
	}{{
		name: "file over default",
		check: func(t *testing.T, c *Config) {
			eq(t, "sse.heartbeat", c.SSE.Heartbeat, 20*time.Second)
			eq(t, "redis.addrs", c.Redis.Addrs, []string{"file:1"})
			eq(t, "sse.write_timeout", c.SSE.WriteTimeout, 10*time.Second)
		},
	}, {
		name: "env over file",
		env:  map[string]string{"EDGE_REDIS_ADDRS": "a:1,b:2", "EDGE_SSE_HEARTBEAT": "5s"},
		check: func(t *testing.T, c *Config) {
			eq(t, "redis.addrs", c.Redis.Addrs, []string{"a:1", "b:2"})
			eq(t, "sse.heartbeat", c.SSE.Heartbeat, 5*time.Second)
			eq(t, "sse.retry", c.SSE.Retry, 3*time.Second)
		},
	}, {
		name:  "flag over env",
		env:   map[string]string{"EDGE_REDIS_ADDRS": "a:1,b:2", "EDGE_SSE_HEARTBEAT": "5s", "EDGE_SSE_QUEUE_SIZE": "7"},
		flags: []string{"--sse.heartbeat=1s", "--redis.addrs", "f:1,g:2,h:3"},
		check: func(t *testing.T, c *Config) {
			eq(t, "sse.heartbeat", c.SSE.Heartbeat, time.Second)
			eq(t, "redis.addrs", c.Redis.Addrs, []string{"f:1", "g:2", "h:3"})
			eq(t, "sse.queue_size", c.SSE.QueueSize, 7)
		},
	}, {
		name:  "repeated list flag appends",
		flags: []string{"--redis.addrs=f:1", "--redis.addrs=g:2"},
		check: func(t *testing.T, c *Config) {
			eq(t, "redis.addrs", c.Redis.Addrs, []string{"f:1", "g:2"})
		},
	}, {
		name:  "empty flag clears a file list",
		flags: []string{"--redis.addrs="},
		check: func(t *testing.T, c *Config) {
			eq(t, "MemoryBroker", c.MemoryBroker(), true)
		},
	}, {
		name: "empty env counts as unset",
		env:  map[string]string{"EDGE_REDIS_ADDRS": ""},
		check: func(t *testing.T, c *Config) {
			eq(t, "redis.addrs", c.Redis.Addrs, []string{"file:1"})
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			tt.check(t, mustLoad(t, append([]string{"--config", file}, tt.flags...)...))
		})
	}
}

// TestEnvOnlyKeys guards against viper #761: keys present only in the
// environment, with no file at all, must still reach the struct.
func TestEnvOnlyKeys(t *testing.T) {
	t.Setenv("EDGE_UPLOADS_DIR", "/srv/up")
	t.Setenv("EDGE_NODE_ID", "node-7")
	t.Setenv("EDGE_AUTH_HMAC_SECRETS", " s1-0123456789abcdef0123456789abcdef , s2-0123456789abcdef0123456789abcdef,,")
	t.Setenv("EDGE_HTTP_H2C", "true")
	t.Setenv("EDGE_HTTP_MAX_BODY_BYTES", "2048")
	t.Setenv("EDGE_RETENTION_RULES", `[{"pattern":"chat:*","max_events":5,"max_age":"1h"}]`)
	c := mustLoad(t, noFile...)
	eq(t, "uploads.dir", c.Uploads.Dir, "/srv/up")
	eq(t, "node.id", c.Node.ID, "node-7")
	eq(t, "auth.hmac_secrets", c.Auth.HMACSecrets, []string{"s1-0123456789abcdef0123456789abcdef", "s2-0123456789abcdef0123456789abcdef"})
	eq(t, "http.h2c", c.HTTP.H2C, true)
	eq(t, "http.max_body_bytes", c.HTTP.MaxBodyBytes, int64(2048))
	eq(t, "retention.rules", c.Retention.Rules, []edge.RetentionRule{{Pattern: "chat:*", Retention: edge.Retention{MaxEvents: 5, MaxAge: time.Hour}}})
}

// TestDefaultFile checks that ./configs/edge.yaml is read when --config is
// absent. It changes directory, so it cannot run in parallel.
func TestDefaultFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "configs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, DefaultFile), []byte("http:\n  addr: \":7000\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	c := mustLoad(t)
	eq(t, "http.addr", c.HTTP.Addr, ":7000")
	eq(t, "File", c.File, DefaultFile)
	eq(t, "--config \"\" skips it", mustLoad(t, noFile...).HTTP.Addr, "127.0.0.1:8080")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string   // config file content, "" for no file
		args []string // extra arguments
		key  string   // the *Error's Key; the message must contain it too
	}{
		{name: "unknown key", file: "http:\n  adr: x\n", key: "http.adr"},
		{name: "unknown section", file: "htp:\n  addr: x\n", key: "htp.addr"},
		{name: "unknown key in a rule", file: "retention:\n  rules:\n    - pattern: a\n      max_evnts: 3\n", key: "retention.rules[0]"},
		{name: "invalid duration", file: "sse:\n  heartbeat: 5 seconds\n", key: "sse.heartbeat"},
		{name: "duration without unit", file: "sse:\n  heartbeat: 15\n", key: "sse.heartbeat"},
		{name: "invalid duration in a rule", file: "retention:\n  rules:\n    - pattern: a\n      max_age: soon\n", key: "retention.rules[0].max_age"},
		{name: "not a number", file: "sse:\n  queue_size: many\n", key: "sse.queue_size"},
		{name: "negative size", file: "http:\n  max_body_bytes: -1\n", key: "http.max_body_bytes"},
		{name: "negative duration", file: "sse:\n  retry: -1s\n", key: "sse.retry"},
		{name: "negative rule", file: "retention:\n  rules:\n    - pattern: a\n      max_events: -1\n", key: "retention.rules[0].max_events"},
		{name: "bad rule pattern", file: "retention:\n  rules:\n    - pattern: \"room:[\"\n", key: "retention.rules[0].pattern"},
		{name: "empty rule pattern", file: "retention:\n  rules:\n    - max_events: 3\n", key: "retention.rules[0].pattern"},
		{name: "tls_cert without tls_key", file: "http:\n  tls_cert: c.pem\n", key: "http.tls_cert"},
		{name: "tls_key without tls_cert", args: []string{"--http.tls_key=k.pem"}, key: "http.tls_cert"},
		{name: "short hmac secret", args: []string{"--auth.hmac_secrets=short"}, key: "auth.hmac_secrets[0]"},
		{name: "bad api key hash", file: "auth:\n  api_keys: [{name: k, hash: nothex}]\n", key: "auth.api_keys[0].hash"},
		{name: "bad trusted proxy", args: []string{"--http.trusted_proxies=10.0.0.1"}, key: "http.trusted_proxies[0]"},
		{name: "h2c with tls", args: []string{"--http.tls_cert=c", "--http.tls_key=k", "--http.h2c"}, key: "http.h2c"},
		{name: "bad addr", args: []string{"--http.addr=8080"}, key: "http.addr"},
		{name: "bad cors origin", args: []string{"--http.cors_origins=https://a.example/"}, key: "http.cors_origins[0]"},
		{name: "bad redis addr", args: []string{"--redis.addrs=a:1,b"}, key: "redis.addrs[1]"},
		{name: "sentinel without addrs", args: []string{"--redis.master_name=m"}, key: "redis.master_name"},
		{name: "db on cluster", args: []string{"--redis.addrs=a:1,b:2", "--redis.db=3"}, key: "redis.db"},
		{name: "bad node id", args: []string{"--node.id=my node"}, key: "node.id"},
		{name: "unknown compression", file: "sse:\n  compression: [gzip, zstd]\n", key: "sse.compression[1]"},
		{name: "unknown log level", args: []string{"--log.level=verbose"}, key: "log.level"},
		{name: "unknown log format", args: []string{"--log.format=xml"}, key: "log.format"},
		{name: "invalid flag duration", args: []string{"--sse.heartbeat=soon"}, key: "sse.heartbeat"},
		{name: "invalid rules json", args: []string{"--retention.rules=[{"}, key: "retention.rules"},
		{name: "missing config file", args: []string{"--config=/nonexistent/edge.yaml"}, key: ""},
		{name: "unknown flag", args: []string{"--http.adr=x"}, key: ""},
		{name: "positional argument", args: []string{"serve"}, key: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := noFile
			if tt.file != "" {
				args = []string{"--config", writeFile(t, tt.file)}
			}
			_, err := Load(append(slices.Clone(args), tt.args...))
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %q (%T) is not an *Error", err, err)
			}
			if errors.Is(err, ErrHelp) {
				t.Fatalf("error %q is ErrHelp", err)
			}
			if e.Key != tt.key {
				t.Errorf("Key = %q, want %q (error: %v)", e.Key, tt.key, err)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("error %q does not name %q", err, tt.key)
			}
			t.Log(err)
		})
	}
}

// TestEnvError checks that a bad environment value names its key, since
// the operator sees the key, not the variable, in the docs.
func TestEnvError(t *testing.T) {
	t.Setenv("EDGE_SSE_HEARTBEAT", "abc")
	_, err := Load(noFile)
	var e *Error
	if !errors.As(err, &e) || e.Key != "sse.heartbeat" {
		t.Fatalf("Load = %v, want an *Error for sse.heartbeat", err)
	}
}

func TestSeveralErrorsAtOnce(t *testing.T) {
	t.Parallel()
	_, err := Load([]string{"--config", "", "--log.level=x", "--log.format=y"})
	for _, k := range []string{"log.level", "log.format"} {
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("error %v does not mention %s", err, k)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h"} {
		_, err := Load([]string{arg})
		if !errors.Is(err, ErrHelp) || !errors.Is(err, pflag.ErrHelp) {
			t.Errorf("Load(%s) = %v, want ErrHelp", arg, err)
		}
	}
	var b bytes.Buffer
	Usage(&b)
	out := b.String()
	for _, f := range keyFields() {
		if !strings.Contains(out, "--"+f.key+" ") && !strings.Contains(out, "--"+f.key+"[") {
			t.Errorf("usage lacks --%s", f.key)
		}
		if f.usage == "" {
			t.Errorf("key %s has no usage tag", f.key)
		}
	}
	for _, s := range []string{"--config", "(default 15s)", `(default "127.0.0.1:8080")`} {
		if !strings.Contains(out, s) {
			t.Errorf("usage lacks %s:\n%s", s, out)
		}
	}
}

// TestShippedFile checks that configs/edge.yaml loads and changes nothing:
// it documents the defaults, so it must equal them.
func TestShippedFile(t *testing.T) {
	t.Parallel()
	got := mustLoad(t, "--config", shipped)
	want := mustLoad(t, noFile...)
	gv, wv := reflect.ValueOf(*got), reflect.ValueOf(*want)
	for _, f := range keyFields() {
		if f.key == "node.id" { // the file leaves it to the hostname; either is fine
			continue
		}
		g, w := gv.FieldByIndex(f.index).Interface(), wv.FieldByIndex(f.index).Interface()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: %s has %v, default is %v", f.key, shipped, g, w)
		}
	}
	got.File, got.Node.ID = "", want.Node.ID
	if !reflect.DeepEqual(*got, *want) {
		t.Errorf("shipped file differs from defaults:\n%+v\n%+v", *got, *want)
	}
}

// TestShippedFileHasEveryKey keeps configs/edge.yaml complete: a key left
// out would still load as its default, so TestShippedFile cannot see it.
func TestShippedFileHasEveryKey(t *testing.T) {
	t.Parallel()
	v := viper.New()
	v.SetConfigFile(shipped)
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	inFile := v.AllKeys()
	for _, f := range keyFields() {
		if !slices.Contains(inFile, f.key) {
			t.Errorf("%s lacks key %s", shipped, f.key)
		}
	}
}

// TestFieldDocs enforces the house rule that every field's comment states
// its default.
func TestFieldDocs(t *testing.T) {
	t.Parallel()
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return true
		}
		if ts.Doc == nil && !strings.Contains(commentOf(f, ts), ts.Name.Name) {
			t.Errorf("type %s has no doc comment", ts.Name.Name)
		}
		for _, fl := range st.Fields.List {
			if fl.Doc == nil || !strings.Contains(strings.ToLower(fl.Doc.Text()), "default") {
				t.Errorf("%s.%s: doc comment must state the default", ts.Name.Name, fl.Names[0].Name)
			}
		}
		return true
	})
}

// commentOf returns the doc of the declaration holding ts (a lone type's
// comment is attached to its GenDecl).
func commentOf(f *ast.File, ts *ast.TypeSpec) string {
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Doc != nil && slices.Contains(g.Specs, ast.Spec(ts)) {
			return g.Doc.Text()
		}
	}
	return ""
}

func TestRetentionPolicy(t *testing.T) {
	t.Parallel()
	c := Config{Retention: RetentionConfig{
		MaxEvents: 10,
		Rules: []edge.RetentionRule{
			{Pattern: "room:*", Retention: edge.Retention{MaxAge: time.Hour}},
			{Pattern: "room:vip", Retention: edge.Retention{MaxEvents: 99}}, // shadowed: first match wins
		},
	}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	p := c.RetentionPolicy()
	tests := []struct {
		topic string
		want  edge.Retention
	}{
		{"room:1", edge.Retention{MaxEvents: 10, MaxAge: time.Hour}},
		{"room:vip", edge.Retention{MaxEvents: 10, MaxAge: time.Hour}},
		{"orders", edge.Retention{MaxEvents: 10, MaxAge: 5 * time.Minute}},
	}
	for _, tt := range tests {
		if got := p.For(tt.topic); got != tt.want {
			t.Errorf("For(%q) = %+v, want %+v", tt.topic, got, tt.want)
		}
	}
	p.Rules[0].Pattern = "changed"
	if c.Retention.Rules[0].Pattern != "room:*" {
		t.Error("RetentionPolicy shares its rules with the Config")
	}
}

func TestRedisOptions(t *testing.T) {
	t.Parallel()
	c := Config{
		Node: NodeConfig{ID: "n1"},
		Redis: RedisConfig{
			Addrs: []string{"s1:26379", "s2:26379"}, Username: "u", Password: "p",
			DB: 2, MasterName: "mymaster", ReadTimeout: 3 * time.Second,
		},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	o := c.RedisOptions()
	eq(t, "Addrs", o.Addrs, []string{"s1:26379", "s2:26379"})
	eq(t, "ClientName", o.ClientName, "edge:n1")
	eq(t, "Username", o.Username, "u")
	eq(t, "Password", o.Password, "p")
	eq(t, "DB", o.DB, 2)
	eq(t, "MasterName", o.MasterName, "mymaster")
	eq(t, "DialTimeout", o.DialTimeout, 2*time.Second)
	eq(t, "ReadTimeout", o.ReadTimeout, 3*time.Second)
	eq(t, "WriteTimeout", o.WriteTimeout, 2*time.Second)
	eq(t, "MemoryBroker", c.MemoryBroker(), false)
}

func TestLogValueRedactsSecrets(t *testing.T) {
	t.Parallel()
	c := Config{
		Redis: RedisConfig{Addrs: []string{"r:6379"}, Password: "hunter2"},
		Auth:  AuthConfig{HMACSecrets: []string{"topsecret-0123456789abcdef0123456789"}},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("ConfigLoaded", "config", c)
	out := b.String()
	for _, s := range []string{"hunter2", "topsecret"} { // a part of the secret is a leak too
		if strings.Contains(out, s) {
			t.Errorf("log line leaks %q: %s", s, out)
		}
	}
	for _, s := range []string{"config.redis.addrs=[r:6379]", "config.sse.heartbeat=15s", "[redacted]"} {
		if !strings.Contains(out, s) {
			t.Errorf("log line lacks %q: %s", s, out)
		}
	}
}

func eq(t *testing.T, name string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", name, got, want)
	}
}
