// Package config holds Edge's configuration: one Config struct, filled by
// Load from a YAML file, EDGE_* environment variables and command-line
// flags, then checked and completed by Validate.
//
// Every key is a dotted path of mapstructure tags ("sse.heartbeat"); its
// environment form is EDGE_ plus the key upper-cased with dots turned into
// underscores (EDGE_SSE_HEARTBEAT); its flag is the key itself
// (--sse.heartbeat). configs/edge.yaml lists every key with its default.
//
// The zero value of every field means "the default", so a Config built in
// code (tests, embedding) needs only the fields it cares about and a call to
// Validate.
package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edge-rt/edge/edge"
)

// Config is the whole configuration of an Edge node.
type Config struct {
	// HTTP configures the listener. Defaults: see HTTPConfig.
	HTTP HTTPConfig `mapstructure:"http"`
	// Redis configures the broker. Default: no addresses, so the in-process
	// memory broker.
	Redis RedisConfig `mapstructure:"redis"`
	// Auth configures token checking. Default: no secrets (dev mode on a
	// loopback address only).
	Auth AuthConfig `mapstructure:"auth"`
	// Uploads configures tus uploads. Defaults: see UploadsConfig.
	Uploads UploadsConfig `mapstructure:"uploads"`
	// Node names this process. Default: the hostname.
	Node NodeConfig `mapstructure:"node"`
	// SSE configures event streams. Defaults: see SSEConfig.
	SSE SSEConfig `mapstructure:"sse"`
	// Retention says how much history topics keep. Defaults: see
	// RetentionConfig.
	Retention RetentionConfig `mapstructure:"retention"`
	// Publish limits what may be published. Defaults: see PublishConfig.
	Publish PublishConfig `mapstructure:"publish"`
	// Limits bounds what one user or address may take. Defaults: see
	// LimitsConfig.
	Limits LimitsConfig `mapstructure:"limits"`
	// Log configures log/slog. Default: info level, text format.
	Log LogConfig `mapstructure:"log"`

	// File is the config file Load read, "" when none (default). It is not
	// a key: Load sets it so main can log which file, if any, was picked
	// up, because the implicit ./configs/edge.yaml is easy to forget.
	File string `mapstructure:"-"`
}

// HTTPConfig configures the HTTP listener (keys http.*).
type HTTPConfig struct {
	// Addr is the listen address. Default "127.0.0.1:8080": loopback, so a
	// bare `go run` never exposes an unauthenticated dev server.
	Addr string `mapstructure:"addr" usage:"listen address, host:port"`
	// TLSCert is the PEM certificate file. Default "" (no TLS). TLS, and
	// with it HTTP/2, is on when both TLSCert and TLSKey are set.
	TLSCert string `mapstructure:"tls_cert" usage:"TLS certificate file (PEM); TLS and HTTP/2 when set with --http.tls_key"`
	// TLSKey is the PEM private key file of TLSCert. Default "".
	TLSKey string `mapstructure:"tls_key" usage:"TLS private key file (PEM)"`
	// H2C accepts cleartext HTTP/2 with prior knowledge, for load balancers
	// that speak h2c to their backends. Default false. Not allowed with TLS.
	H2C bool `mapstructure:"h2c" usage:"accept cleartext HTTP/2 (prior knowledge)"`
	// ReadHeaderTimeout bounds reading request headers, against slowloris
	// clients holding connections open. Default 10s.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout" usage:"time allowed to read request headers"`
	// IdleTimeout closes keep-alive connections idle this long. Default
	// 120s.
	IdleTimeout time.Duration `mapstructure:"idle_timeout" usage:"keep-alive idle timeout"`
	// MaxBodyBytes is the largest request body accepted by publish and
	// chat endpoints. Default 1048576 (1 MiB).
	MaxBodyBytes int64 `mapstructure:"max_body_bytes" usage:"largest publish request body, in bytes"`
	// DrainTimeout is the window over which open streams are ended on
	// shutdown, spread out so clients do not all reconnect in the same
	// instant. Default 10s.
	DrainTimeout time.Duration `mapstructure:"drain_timeout" usage:"window over which streams are ended on shutdown"`
	// CORSOrigins lists the origins ("https://app.example.com") allowed
	// cross-origin requests; "*" allows any. Default empty: same-origin
	// only.
	CORSOrigins []string `mapstructure:"cors_origins" usage:"allowed CORS origins, comma-separated (empty: same-origin only)"`
	// MaxHeaderBytes bounds a request's headers; larger ones get a 431 JSON
	// error. Default 16384.
	MaxHeaderBytes int `mapstructure:"max_header_bytes" usage:"largest request headers, in bytes"`
	// TrustedProxies are the CIDRs of proxies whose X-Forwarded-For names
	// the client address (for per-address limits). Default empty: the
	// connection's peer is the client.
	TrustedProxies []string `mapstructure:"trusted_proxies" usage:"CIDRs of proxies trusted for X-Forwarded-For"`
	// PprofAddr, when set, serves net/http/pprof on this separate address
	// (keep it on loopback). Default empty: off.
	PprofAddr string `mapstructure:"pprof_addr" usage:"address for net/http/pprof (empty: off)"`
}

// RedisConfig configures the Redis broker (keys redis.*).
type RedisConfig struct {
	// Addrs are Redis addresses (host:port). Default empty: the in-process
	// memory broker, which is single-node only. One address is a single
	// Redis; several are a Cluster's seed nodes; with MasterName they are
	// Sentinels. A Cluster therefore needs at least two seed addresses.
	// The environment form is comma-separated: EDGE_REDIS_ADDRS="a:1,b:2".
	Addrs []string `mapstructure:"addrs" usage:"Redis addresses, comma-separated (empty: memory broker)"`
	// Username is the ACL user. Default "" (the default user).
	Username string `mapstructure:"username" usage:"Redis ACL username"`
	// Password is the Redis password. Default "". Prefer EDGE_REDIS_PASSWORD
	// to the flag: flags show in ps.
	Password string `mapstructure:"password" usage:"Redis password (prefer EDGE_REDIS_PASSWORD: flags show in ps)" secret:"true"`
	// DB is the database number. Default 0; must be 0 on a Cluster, which
	// has no numbered databases.
	DB int `mapstructure:"db" usage:"Redis database number (0 on Cluster)"`
	// MasterName is the Sentinel master name; when set, Addrs are the
	// Sentinels. Default "" (no Sentinel).
	MasterName string `mapstructure:"master_name" usage:"Sentinel master name (redis.addrs are then Sentinels)"`
	// ShardedPubSub uses SSUBSCRIBE/SPUBLISH (Redis 7+), so on a Cluster a
	// topic's messages stay on its shard instead of being broadcast to
	// every node. Default false.
	ShardedPubSub bool `mapstructure:"sharded_pubsub" usage:"use sharded pub/sub (Redis 7+, for Cluster)"`
	// DialTimeout bounds connecting. Default 2s.
	DialTimeout time.Duration `mapstructure:"dial_timeout" usage:"Redis connect timeout"`
	// ReadTimeout bounds each command's reply. Default 2s. Negative values
	// (go-redis's "no timeout") are refused: a hung Redis must not hang
	// publishers forever.
	ReadTimeout time.Duration `mapstructure:"read_timeout" usage:"Redis read timeout"`
	// WriteTimeout bounds each command's write. Default 2s.
	WriteTimeout time.Duration `mapstructure:"write_timeout" usage:"Redis write timeout"`
}

// AuthConfig configures token checking (keys auth.*).
type AuthConfig struct {
	// HMACSecrets are the HS256 secrets; a token signed with any of them is
	// accepted, so a secret can be rotated without downtime. Default empty:
	// dev mode on a loopback address, refusal to start elsewhere. The
	// environment form is comma-separated.
	HMACSecrets []string `mapstructure:"hmac_secrets" usage:"HS256 secrets, comma-separated (prefer EDGE_AUTH_HMAC_SECRETS: flags show in ps)" secret:"true"`
	// JWKSFile holds RS256/ES256 public keys as a JWKS document; it is
	// reloaded when it changes and on SIGHUP. Default empty: none.
	JWKSFile string `mapstructure:"jwks_file" usage:"JWKS file with RS256/ES256 public keys"`
	// Issuer, when set, must equal a token's iss. Default empty: unchecked.
	Issuer string `mapstructure:"issuer" usage:"required token issuer (empty: unchecked)"`
	// Audience, when set, must be among a token's aud. Default empty:
	// unchecked.
	Audience string `mapstructure:"audience" usage:"required token audience (empty: unchecked)"`
	// Leeway tolerates clock skew on exp and nbf. Default 30s.
	Leeway time.Duration `mapstructure:"leeway" usage:"clock skew allowed on exp/nbf"`
	// CookieName is the HttpOnly cookie a browser's token may come in.
	// Default "edge_token".
	CookieName string `mapstructure:"cookie_name" usage:"cookie holding a token"`
	// DisableQueryToken refuses tokens in the access_token query parameter.
	// Default false: accepted, since EventSource cannot send headers (the
	// parameter is never logged).
	DisableQueryToken bool `mapstructure:"disable_query_token" usage:"refuse ?access_token="`
	// DefaultSubscribe are topic patterns every user may follow, on top of
	// the token's own; {sub} and {org} are replaced by the token's claims
	// (patterns with {org} are dropped for tokens without org). Default
	// ["user:{sub}", "user:{sub}:*", "org:{org}", "org:{org}:*"].
	DefaultSubscribe []string `mapstructure:"default_subscribe" usage:"topic patterns every user may follow"`
	// DefaultPublish are topic patterns every user may publish to, with the
	// same placeholders. Default empty.
	DefaultPublish []string `mapstructure:"default_publish" usage:"topic patterns every user may publish to"`
	// APIKeys are server-to-server publishing keys, stored hashed. Default
	// none. In the environment or a flag: JSON.
	APIKeys []APIKeyConfig `mapstructure:"api_keys" usage:"API keys as JSON [{name,hash,publish}]"`
	// DevTokenTTL is the lifetime of the token printed in dev mode. Default
	// 24h.
	DevTokenTTL time.Duration `mapstructure:"dev_token_ttl" usage:"lifetime of the dev-mode token"`
}

// APIKeyConfig is one API key.
type APIKeyConfig struct {
	// Name identifies the key in logs and metrics; [A-Za-z0-9._-]{1,64},
	// like a token's sub (checked by edge/auth). Required: no default.
	Name string `mapstructure:"name"`
	// Hash is the hex SHA-256 of the key (`printf %s KEY | sha256sum`), so
	// the config holds nothing that publishes by itself. Required: no
	// default.
	Hash string `mapstructure:"hash"`
	// Publish are the topic patterns the key may publish to. Default
	// empty: none.
	Publish []string `mapstructure:"publish"`
}

// LimitsConfig bounds what one user or address may take (keys limits.*).
// Each refusal is a JSON error and is counted in edge_limit_refusals_total.
type LimitsConfig struct {
	// StreamsPerUser is the most streams one user holds on one node.
	// Default 32.
	StreamsPerUser int `mapstructure:"streams_per_user" usage:"most streams per user on a node"`
	// StreamsPerIP is the most streams one client address holds on one
	// node. Default 512 (offices and mobile carriers share addresses).
	StreamsPerIP int `mapstructure:"streams_per_ip" usage:"most streams per client address on a node"`
	// PublishRate is the sustained publishes per second one user or API key
	// may make, across all nodes. Default 50.
	PublishRate float64 `mapstructure:"publish_rate" usage:"publishes per second per user or API key"`
	// PublishBurst is how many publishes may come at once above the rate.
	// Default 100.
	PublishBurst int `mapstructure:"publish_burst" usage:"publish burst per user or API key"`
}

// UploadsConfig configures tus uploads (keys uploads.*).
type UploadsConfig struct {
	// Dir is the file store directory. Default "./data/uploads". Nodes that
	// share uploads must share this directory.
	Dir string `mapstructure:"dir" usage:"upload file store directory"`
	// MaxSize is the largest upload in bytes, advertised as Tus-Max-Size.
	// Default 2147483648 (2 GiB).
	MaxSize int64 `mapstructure:"max_size" usage:"largest upload, in bytes"`
	// AllowedTypes are media-type patterns ("image/*", "application/pdf")
	// checked against the declared filetype and the file's first bytes.
	// Default empty: any type.
	AllowedTypes []string `mapstructure:"allowed_types" usage:"allowed media types, e.g. image/*,application/pdf (empty: any)"`
	// MaxConcurrentPerUser is how many unfinished uploads one user may
	// have. Default 4.
	MaxConcurrentPerUser int `mapstructure:"max_concurrent_per_user" usage:"unfinished uploads per user"`
	// MaxBytesPerUser bounds the sizes of one user's unfinished uploads
	// together, a deferred length counting as max_size until declared.
	// Default 10737418240 (10 GiB).
	MaxBytesPerUser int64 `mapstructure:"max_bytes_per_user" usage:"bytes of unfinished uploads per user"`
	// ProgressInterval is the least time between two upload.progress
	// events of one upload. Default 250ms.
	ProgressInterval time.Duration `mapstructure:"progress_interval" usage:"least time between progress events of an upload"`
	// ExpireAfter is when the janitor removes an unfinished upload (tus has
	// no expiration extension in tusd). Default 24h.
	ExpireAfter time.Duration `mapstructure:"expire_after" usage:"age at which unfinished uploads are removed"`
	// OCR runs text recognition (the tesseract CLI; PDFs through pdftoppm)
	// on finished images and PDFs. Default false.
	OCR bool `mapstructure:"ocr" usage:"run OCR on finished images and PDFs"`
	// OCRLanguages are tesseract's language codes, joined with '+'.
	// Default "eng".
	OCRLanguages string `mapstructure:"ocr_languages" usage:"tesseract languages, e.g. eng+deu"`
	// Processors is how many post-processing jobs run at once. Default 2.
	Processors int `mapstructure:"processors" usage:"post-processing jobs at once"`
	// LockLease is how long a node's lock on an upload lasts without
	// renewal when uploads are locked through Redis: after a node dies,
	// another resumes its uploads once the lease runs out. Default 10s.
	LockLease time.Duration `mapstructure:"lock_lease" usage:"lease of an upload's lock in Redis"`
	// ProcessorTimeout bounds one post-processing job. Default 2m.
	ProcessorTimeout time.Duration `mapstructure:"processor_timeout" usage:"time limit of one post-processing job"`
	// QuarantineFor is how long the files of an upload that failed its
	// sha256 check are kept for inspection. Default 168h (7 days).
	QuarantineFor time.Duration `mapstructure:"quarantine_for" usage:"how long uploads that failed their checksum are kept"`
	// S3 stores uploads in a bucket instead of Dir (keys uploads.s3.*).
	// Default: no bucket, the file store.
	S3 UploadsS3Config `mapstructure:"s3"`
}

// UploadsS3Config selects tusd's S3 store (keys uploads.s3.*): set bucket.
// uploads.dir then only holds the parts buffered before they are sent and
// the local copies post-processing reads.
type UploadsS3Config struct {
	// Bucket holds the uploads; it must exist. Default empty: the file
	// store.
	Bucket string `mapstructure:"bucket" usage:"S3 bucket for uploads (empty: file store in uploads.dir)"`
	// Prefix is put in front of every key. Everything under it is Edge's:
	// the janitor removes hex-named objects and multipart uploads there
	// that belong to no upload. "/" puts uploads in the bucket root, where
	// the janitor touches only the names Edge itself writes (empty means
	// the default, as for every key). Default "uploads/".
	Prefix string `mapstructure:"prefix" usage:"key prefix in the S3 bucket"`
	// Endpoint is an S3-compatible service's URL. Default empty: AWS.
	Endpoint string `mapstructure:"endpoint" usage:"S3-compatible endpoint URL (empty: AWS)"`
	// Region. Default "us-east-1".
	Region string `mapstructure:"region" usage:"S3 region"`
	// PathStyle puts the bucket in the path, as most S3-compatible
	// services want. Default false.
	PathStyle bool `mapstructure:"path_style" usage:"path-style S3 addressing"`
	// AccessKey and SecretKey are static credentials. Default empty: the
	// AWS SDK's default chain (AWS_* environment, shared files, instance
	// role).
	AccessKey string `mapstructure:"access_key" usage:"S3 access key (empty: AWS default credentials)"`
	// SecretKey goes with AccessKey. Default empty.
	SecretKey string `mapstructure:"secret_key" usage:"S3 secret key (prefer EDGE_UPLOADS_S3_SECRET_KEY: flags show in ps)" secret:"true"`
	// PartSize is the preferred multipart part size in bytes, at least
	// 5 MiB. Default 52428800 (50 MiB, tusd's).
	PartSize int64 `mapstructure:"part_size" usage:"preferred S3 multipart part size in bytes"`
}

// NodeConfig names this node (keys node.*).
type NodeConfig struct {
	// ID names the node in logs, metrics and its Redis client name.
	// Default: os.Hostname(), or "edge" if that fails. Printable ASCII
	// without spaces, because Redis refuses other client names.
	ID string `mapstructure:"id" usage:"node name in logs and metrics (default: hostname)"`
}

// SSEConfig configures event streams (keys sse.*).
type SSEConfig struct {
	// Heartbeat is the longest a stream stays silent before a comment line
	// is sent, kept under the idle timeouts of common proxies (often 30-60s)
	// so they do not cut quiet streams. Default 15s.
	Heartbeat time.Duration `mapstructure:"heartbeat" usage:"comment sent when a stream is silent this long"`
	// Retry is the base reconnection delay sent to clients as "retry:".
	// Default 2s.
	Retry time.Duration `mapstructure:"retry" usage:"base reconnect delay sent as retry:"`
	// RetryJitter is the most random delay added to Retry per stream, so a
	// node's clients do not come back in lockstep. Default 1s. It cannot be
	// turned off (zero means the default).
	RetryJitter time.Duration `mapstructure:"retry_jitter" usage:"random extra reconnect delay, up to this"`
	// MaxLifetime is how long a stream may live before the server ends it
	// (the client reconnects and resumes from its cursor). Default 30m.
	// There is deliberately no "unlimited": zero means the default, because
	// endless streams pin clients to the node they first reached (so new
	// nodes never get load after a scale-out), outlive revoked or expired
	// tokens, and turn every deploy into one reconnect storm.
	MaxLifetime time.Duration `mapstructure:"max_lifetime" usage:"longest life of a stream (no unlimited)"`
	// LifetimeJitter is the most random time added to MaxLifetime per
	// stream, so streams opened together do not end together. Default 5m.
	LifetimeJitter time.Duration `mapstructure:"lifetime_jitter" usage:"random extra stream lifetime, up to this"`
	// QueueSize is how many events may wait for one stream; a stream whose
	// queue overflows is closed and its client resumes from history, so a
	// slow reader never holds up the others. Default 512.
	QueueSize int `mapstructure:"queue_size" usage:"events queued per stream before it is closed as slow"`
	// WriteTimeout is the deadline of each write to a stream; it replaces a
	// server-wide write timeout, which would kill every long stream.
	// Default 10s.
	WriteTimeout time.Duration `mapstructure:"write_timeout" usage:"deadline of each write to a stream"`
	// MaxTopics is the most topics one stream may follow. Default 32.
	MaxTopics int `mapstructure:"max_topics" usage:"most topics per stream"`
	// BatchWindow is how long a stream waits after an event for more, to
	// send them in one write. Default 0: write as soon as events arrive.
	BatchWindow time.Duration `mapstructure:"batch_window" usage:"wait this long to batch events into one write (0: none)"`
	// Compression lists the encodings offered to clients, in the server's
	// order of preference: a subset of "br" and "gzip". Default empty:
	// compression off, since it costs memory per stream.
	Compression []string `mapstructure:"compression" usage:"allowed stream encodings: br,gzip (empty: off)"`
}

// RetentionConfig configures topic history (keys retention.*).
type RetentionConfig struct {
	// MaxEvents is the most events a topic matching no rule keeps. Default
	// 1000.
	MaxEvents int `mapstructure:"max_events" usage:"events kept per topic matching no rule"`
	// MaxAge is how long a topic matching no rule keeps events. Default 5m.
	MaxAge time.Duration `mapstructure:"max_age" usage:"age of events kept per topic matching no rule"`
	// Rules give matching topics their own retention; the first match wins.
	// A rule's zero MaxEvents or MaxAge takes MaxEvents or MaxAge above.
	// Default (nil): one rule, "room:*" with 10000 events / 168h, so chat
	// history outlives the stream default. An explicit empty list means no
	// rules. As an environment variable or flag the value is JSON, e.g.
	// [{"pattern":"room:*","max_events":10000,"max_age":"168h"}].
	Rules []edge.RetentionRule `mapstructure:"rules" usage:"retention rules as JSON, e.g. [{\"pattern\":\"room:*\",\"max_events\":10000,\"max_age\":\"168h\"}] (default: that one rule)"`
	// MetaTTL is how long a topic's state (epoch, sequence) outlives its
	// last publish. Default 24h. When it expires the topic gets a new
	// epoch and clients holding old cursors get a reset, so the Redis
	// broker should not let it expire before the topic's history does.
	MetaTTL time.Duration `mapstructure:"meta_ttl" usage:"how long idle topic state (epoch, sequence) is kept"`
	// IdempotencyTTL is how long an Idempotency-Key is remembered, i.e. how
	// late a retry still returns the first result. Default 24h.
	IdempotencyTTL time.Duration `mapstructure:"idempotency_ttl" usage:"how long Idempotency-Key results are remembered"`
}

// PublishConfig limits publishing (keys publish.*).
type PublishConfig struct {
	// MaxEventBytes is the largest event data, in bytes, since every event
	// is held in history and copied to every stream. Default 65536 (64 KiB).
	MaxEventBytes int64 `mapstructure:"max_event_bytes" usage:"largest event data, in bytes"`
}

// LogConfig configures logging (keys log.*).
type LogConfig struct {
	// Level is debug, info, warn or error (any case). Default "info".
	Level string `mapstructure:"level" usage:"log level: debug|info|warn|error"`
	// Format is text or json (any case). Default "text".
	Format string `mapstructure:"format" usage:"log format: text|json"`
}

// defaults returns the default configuration, the single source of the
// values Validate fills in, Load registers with viper and --help shows.
// Node.ID is left empty: it depends on the machine, so Validate fills it.
func defaults() Config {
	return Config{
		HTTP: HTTPConfig{
			Addr:              "127.0.0.1:8080",
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxBodyBytes:      1 << 20,
			DrainTimeout:      10 * time.Second,
			MaxHeaderBytes:    16 << 10,
		},
		Auth: AuthConfig{
			Leeway:           30 * time.Second,
			CookieName:       "edge_token",
			DefaultSubscribe: []string{"user:{sub}", "user:{sub}:*", "org:{org}", "org:{org}:*"},
			DevTokenTTL:      24 * time.Hour,
		},
		Limits: LimitsConfig{StreamsPerUser: 32, StreamsPerIP: 512, PublishRate: 50, PublishBurst: 100},
		Redis: RedisConfig{
			DialTimeout:  2 * time.Second,
			ReadTimeout:  2 * time.Second,
			WriteTimeout: 2 * time.Second,
		},
		Uploads: UploadsConfig{
			Dir:                  "./data/uploads",
			MaxSize:              2 << 30,
			MaxConcurrentPerUser: 4,
			MaxBytesPerUser:      10 << 30,
			ProgressInterval:     250 * time.Millisecond,
			ExpireAfter:          24 * time.Hour,
			OCRLanguages:         "eng",
			Processors:           2,
			ProcessorTimeout:     2 * time.Minute,
			LockLease:            10 * time.Second,
			QuarantineFor:        168 * time.Hour,
			S3:                   UploadsS3Config{Prefix: "uploads/", Region: "us-east-1", PartSize: 50 << 20},
		},
		SSE: SSEConfig{
			Heartbeat:      15 * time.Second,
			Retry:          2 * time.Second,
			RetryJitter:    time.Second,
			MaxLifetime:    30 * time.Minute,
			LifetimeJitter: 5 * time.Minute,
			QueueSize:      512,
			WriteTimeout:   10 * time.Second,
			MaxTopics:      32,
		},
		Retention: RetentionConfig{
			MaxEvents: edge.DefaultRetention.MaxEvents,
			MaxAge:    edge.DefaultRetention.MaxAge,
			Rules: []edge.RetentionRule{{
				Pattern:   "room:*",
				Retention: edge.Retention{MaxEvents: 10000, MaxAge: 168 * time.Hour},
			}},
			MetaTTL:        24 * time.Hour,
			IdempotencyTTL: 24 * time.Hour,
		},
		Publish: PublishConfig{MaxEventBytes: 64 << 10},
		Log:     LogConfig{Level: "info", Format: "text"},
	}
}

// Validate fills every zero field with its default, normalises lists and
// names, and checks every value. It returns all problems at once, joined,
// each an *Error naming its key, so an operator fixes a file in one pass.
// Validate is idempotent.
func (c *Config) Validate() error {
	c.normalize()
	fillZero(reflect.ValueOf(c).Elem(), reflect.ValueOf(defaults()))
	if c.Node.ID == "" {
		c.Node.ID = hostname()
	}
	for i := range c.Retention.Rules {
		r := &c.Retention.Rules[i]
		if r.MaxEvents == 0 {
			r.MaxEvents = c.Retention.MaxEvents
		}
		if r.MaxAge == 0 {
			r.MaxAge = c.Retention.MaxAge
		}
	}

	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Err: fmt.Errorf(format, args...)})
	}

	// Negative sizes and durations are never meaningful; checking them by
	// reflection means a new key cannot be forgotten.
	v := reflect.ValueOf(c).Elem()
	for _, f := range keyFields() {
		fv := v.FieldByIndex(f.index)
		switch fv.Kind() {
		case reflect.Int, reflect.Int64:
			if fv.Int() < 0 {
				bad(f.key, "must not be negative, got %v", fv.Interface())
			}
		}
	}

	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "want host:port: %v", err)
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		bad("http.tls_cert", "http.tls_cert and http.tls_key must be set together")
	}
	if c.HTTP.H2C && c.HTTP.TLSCert != "" {
		// One listener cannot be both; h2c with TLS configured is almost
		// certainly a copied setting that would silently do nothing.
		bad("http.h2c", "cleartext HTTP/2 cannot be combined with TLS (HTTP/2 is already on with TLS)")
	}
	for i, o := range c.HTTP.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			bad(fmt.Sprintf("http.cors_origins[%d]", i), "%v", err)
		}
	}

	for i, cidr := range c.HTTP.TrustedProxies {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			bad(fmt.Sprintf("http.trusted_proxies[%d]", i), "want a CIDR such as 10.0.0.0/8: %v", err)
		}
	}
	for i, secret := range c.Auth.HMACSecrets {
		// An HS256 token lets anyone guess its secret offline: short ones
		// fall to brute force.
		if len(secret) < 32 {
			bad(fmt.Sprintf("auth.hmac_secrets[%d]", i), "is %d bytes, want at least 32 (e.g. openssl rand -hex 32)", len(secret))
		}
	}
	for i, k := range c.Auth.APIKeys {
		if k.Name == "" {
			bad(fmt.Sprintf("auth.api_keys[%d].name", i), "must be set")
		}
		if b, err := hex.DecodeString(k.Hash); err != nil || len(b) != sha256.Size {
			bad(fmt.Sprintf("auth.api_keys[%d].hash", i), "want the 64-character hex SHA-256 of the key")
		}
	}
	if c.Limits.PublishRate < 0 {
		bad("limits.publish_rate", "must not be negative")
	}

	for i, a := range c.Redis.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad(fmt.Sprintf("redis.addrs[%d]", i), "want host:port: %v", err)
		}
	}
	if c.Redis.MasterName != "" && len(c.Redis.Addrs) == 0 {
		bad("redis.master_name", "needs Sentinel addresses in redis.addrs")
	}
	if c.Redis.DB != 0 && c.Redis.MasterName == "" && len(c.Redis.Addrs) > 1 {
		bad("redis.db", "must be 0 with several redis.addrs (a Cluster has no numbered databases)")
	}

	if s3 := c.Uploads.S3; s3.Bucket != "" {
		if s3.PartSize < 5<<20 {
			bad("uploads.s3.part_size", "must be at least 5242880 (S3's smallest part), got %d", s3.PartSize)
		}
		if s3.Endpoint != "" {
			if u, err := url.Parse(s3.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad("uploads.s3.endpoint", "want an http(s) URL such as https://s3.example.com, got %q", s3.Endpoint)
			}
		}
		if (s3.AccessKey == "") != (s3.SecretKey == "") {
			bad("uploads.s3.access_key", "uploads.s3.access_key and uploads.s3.secret_key must be set together")
		}
	}

	if !validNodeID(c.Node.ID) {
		bad("node.id", "must be printable ASCII without spaces (it is also the Redis client name), got %q", c.Node.ID)
	}

	for i, e := range c.SSE.Compression {
		if e != "br" && e != "gzip" {
			bad(fmt.Sprintf("sse.compression[%d]", i), "unknown encoding %q (want br or gzip)", e)
		}
	}

	for i, r := range c.Retention.Rules {
		key := fmt.Sprintf("retention.rules[%d]", i)
		if r.Pattern == "" {
			bad(key+".pattern", "must not be empty")
		} else if _, err := path.Match(r.Pattern, ""); err != nil {
			bad(key+".pattern", "%q: %v", r.Pattern, err)
		}
		if r.MaxEvents < 0 {
			bad(key+".max_events", "must not be negative, got %d", r.MaxEvents)
		}
		if r.MaxAge < 0 {
			bad(key+".max_age", "must not be negative, got %v", r.MaxAge)
		}
	}

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "unknown format %q (want text or json)", c.Log.Format)
	}
	return errors.Join(errs...)
}

// normalize trims list items and drops empty ones, because comma-separated
// environment values ("a:1, b:2," ) carry stray spaces and commas; an empty
// HMAC secret in particular must never survive. Empty lists become nil so
// that "[]" in a file and an absent key compare equal. Rules are exempt: an
// explicit empty rule list is a choice (no rules), not an absence.
func (c *Config) normalize() {
	for _, p := range []*[]string{
		&c.HTTP.CORSOrigins, &c.Redis.Addrs, &c.Auth.HMACSecrets, &c.SSE.Compression,
		&c.HTTP.TrustedProxies, &c.Auth.DefaultSubscribe, &c.Auth.DefaultPublish,
		&c.Uploads.AllowedTypes,
	} {
		*p = cleanList(*p)
	}
	c.SSE.Compression = dedupe(c.SSE.Compression)
	if len(c.Auth.APIKeys) == 0 {
		c.Auth.APIKeys = nil // "api_keys: []" in a file means the default
	}
	c.Log.Level = strings.ToLower(strings.TrimSpace(c.Log.Level))
	c.Log.Format = strings.ToLower(strings.TrimSpace(c.Log.Format))
	c.Node.ID = strings.TrimSpace(c.Node.ID)
}

func cleanList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// fillZero sets every zero field of dst, recursively through structs, to
// the field of def: the whole of "zero means default" in one place.
func fillZero(dst, def reflect.Value) {
	for i := range dst.NumField() {
		f, d := dst.Field(i), def.Field(i)
		switch {
		case f.Kind() == reflect.Struct:
			fillZero(f, d)
		case f.IsZero():
			f.Set(d)
		}
	}
}

func hostname() string {
	if h, err := os.Hostname(); err == nil && validNodeID(h) {
		return h
	}
	return "edge"
}

func validNodeID(id string) bool {
	if id == "" {
		return false
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// checkOrigin accepts "*" or a bare origin, scheme://host[:port]. A path or
// trailing slash is refused because browsers send Origin without one, so
// such an entry would never match and CORS would fail mysteriously.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("want \"*\" or an origin like https://app.example.com, got %q", o)
	}
	return nil
}

// MemoryBroker reports whether the node runs the in-process memory broker,
// which is the case when no Redis address is configured.
func (c *Config) MemoryBroker() bool { return len(c.Redis.Addrs) == 0 }

// RetentionPolicy returns the retention the brokers apply: the configured
// rules, else retention.max_events / retention.max_age.
func (c *Config) RetentionPolicy() edge.RetentionPolicy {
	return edge.RetentionPolicy{
		Default: edge.Retention{MaxEvents: c.Retention.MaxEvents, MaxAge: c.Retention.MaxAge},
		Rules:   slices.Clone(c.Retention.Rules),
	}
}

// RedisOptions returns go-redis options built from the redis.* keys, for
// redis.NewUniversalClient: one address gives a plain client, several a
// Cluster client, MasterName a Sentinel-backed client. It returns nil when
// MemoryBroker is true, rather than options that would quietly dial
// localhost:6379. Call it on a validated Config.
func (c *Config) RedisOptions() *redis.UniversalOptions {
	if c.MemoryBroker() {
		return nil
	}
	return &redis.UniversalOptions{
		Addrs:      slices.Clone(c.Redis.Addrs),
		ClientName: "edge:" + c.Node.ID, // so CLIENT LIST shows which node holds a connection
		DB:         c.Redis.DB,
		Username:   c.Redis.Username,
		Password:   c.Redis.Password,
		MasterName: c.Redis.MasterName,

		DialTimeout:  c.Redis.DialTimeout,
		ReadTimeout:  c.Redis.ReadTimeout,
		WriteTimeout: c.Redis.WriteTimeout,
		// No automatic retries: a publish script whose reply was lost would
		// be run again and store the event twice. Publishers retry with
		// their Idempotency-Key; the hub retries history reads itself.
		MaxRetries: -1,
	}
}

// SlogLevel returns log.level as a slog.Level. Call it on a validated
// Config; an unknown level gives slog.LevelInfo.
func (c *Config) SlogLevel() slog.Level {
	switch c.Log.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// LogValue logs the configuration one group per section, with secrets
// (redis.password, auth.hmac_secrets) redacted, so main can log the
// effective configuration at start without leaking credentials.
//
// It has a value receiver so a Config logged by value is redacted too.
func (c Config) LogValue() slog.Value {
	v := reflect.ValueOf(c)
	var groups []slog.Attr
	var section string
	var attrs []any
	flush := func() {
		if section != "" {
			groups = append(groups, slog.Group(section, attrs...))
		}
		attrs = nil
	}
	for _, f := range keyFields() {
		sec, name, _ := strings.Cut(f.key, ".")
		if sec != section {
			flush()
			section = sec
		}
		val := v.FieldByIndex(f.index).Interface()
		if f.secret && !v.FieldByIndex(f.index).IsZero() {
			val = "[redacted]"
		}
		attrs = append(attrs, slog.Any(name, val))
	}
	flush()
	groups = append(groups, slog.String("file", c.File))
	return slog.GroupValue(groups...)
}

// TLS reports whether the server serves HTTPS (and so HTTP/2 over TLS).
func (c *Config) TLS() bool { return c.HTTP.TLSCert != "" && c.HTTP.TLSKey != "" }
