package edge

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisBroker is a Broker over Redis (single, Sentinel or Cluster), shared
// by any number of nodes. Per topic it keeps, under the topic's hash tag so
// that one topic lives in one cluster slot:
//
//	edge:{<topic>}:meta        hash: epoch, seq
//	edge:{<topic>}:log         sorted set of events, score = seq
//	edge:{<topic>}:idem:<key>  "<epoch>:<seq>:<ts>" of an idempotent publish
//	edge:{<topic>}             pub/sub channel
//
// A log member is "<seq>\n<ts>\n<type>\n<data>" and a pub/sub payload is
// "<epoch>\n" followed by the member; an ephemeral payload has an empty
// epoch and seq. Newline separators are safe because Publication.Normalize
// compacts data (no raw line breaks) and rejects types with CR, LF or NUL.
//
// A publish and a history read are each one Lua script, so they are atomic.
// When the topic's meta is lost (FLUSHALL, a restart without persistence,
// expiry) the next publish or history read makes a new epoch and the
// sequence starts again: History reports head 0, the next event is 1.
//
// Pub/sub is at most once: after a reconnect go-redis resubscribes and the
// broker calls HandleResubscribed so the caller can heal from History.
//
// It needs Redis 6.2 or later (ZRANGE BYSCORE), 7.0 with Sharded.
type RedisBroker struct {
	client redis.UniversalClient
	opts   RedisOptions
	log    *slog.Logger
	closed atomic.Bool // set by Close: Publish and History fail from then on

	// cmdMu orders SUBSCRIBE and UNSUBSCRIBE writes with the expectations
	// recorded for them, so that confirmations can be matched in order.
	cmdMu sync.Mutex

	mu      sync.Mutex
	handler Handler
	subs    map[uint16]*redisSub // by hash slot when sharded, else only key 0
	stopped bool                 // Run ended or Close was called

	started chan struct{}  // closed when Run has a handler
	quit    chan struct{}  // closed when Run ends or Close is called
	in      chan redisRecv // everything the pub/sub connections receive
}

var _ Broker = (*RedisBroker)(nil)

// RedisOptions configures a RedisBroker. Zero values mean the defaults.
type RedisOptions struct {
	// Retention says how much history each topic keeps; the zero policy
	// keeps DefaultRetention (1,000 events or 5 minutes).
	Retention RetentionPolicy
	// MetaTTL is how long a topic's epoch and sequence outlive its last
	// publish or history read. Default 24h. It is raised to the topic's max
	// age when shorter, so that a sequence is never reused while its events
	// are still in history.
	MetaTTL time.Duration
	// IdempotencyTTL is how long an Idempotency-Key is remembered. Default
	// 24h.
	IdempotencyTTL time.Duration
	// Sharded uses SSUBSCRIBE/SPUBLISH (Redis 7 sharded pub/sub), so that on
	// a Cluster a topic's messages only travel to its slot's shard. Default
	// false. Channels in one SSUBSCRIBE must share a slot, so the broker
	// keeps one pub/sub connection per hash slot that has subscriptions.
	Sharded bool
	// Logger receives resubscriptions and undecodable messages. Default
	// slog.Default().
	Logger *slog.Logger
}

// redisRecv is one message or subscription notice from a pub/sub connection.
type redisRecv struct {
	sub *redisSub
	msg any
}

// redisSub is one pub/sub connection and the topics subscribed through it.
type redisSub struct {
	ps     *redis.PubSub
	topics map[string]*redisTopicSub
	// expect lists, per topic, the SUBSCRIBE and UNSUBSCRIBE commands sent
	// and not yet confirmed, oldest first. A subscribe confirmation that
	// nothing expects is go-redis resubscribing after a reconnect.
	expect map[string][]*redisExpect
}

type redisExpect struct {
	subscribe bool
	st        *redisTopicSub // the subscription a SUBSCRIBE was sent for
}

// redisTopicSub is a wanted subscription; ready closes when it is confirmed
// (err nil) or abandoned (err set).
type redisTopicSub struct {
	ready chan struct{}
	done  bool
	err   error
}

func (s *redisTopicSub) settle(err error) {
	if !s.done {
		s.done, s.err = true, err
		close(s.ready)
	}
}

// errRedisUnsubscribed ends a Subscribe whose topic was unsubscribed before
// Redis confirmed the subscription.
var errRedisUnsubscribed = errors.New("edge: unsubscribed before the subscription was confirmed")

const (
	// redisRecvBuffer and redisRecvSendTimeout bound how long a stalled Run
	// can hold go-redis's reader: past the timeout go-redis drops the
	// message (the hub heals the gap from history) instead of blocking the
	// connection.
	redisRecvBuffer      = 1024
	redisRecvSendTimeout = 5 * time.Second
)

//go:embed redis_common.lua
var redisCommonLua string

//go:embed redis_publish.lua
var redisPublishLua string

//go:embed redis_history.lua
var redisHistoryLua string

var (
	redisPublishScript = redis.NewScript(redisCommonLua + redisPublishLua)
	redisHistoryScript = redis.NewScript(redisCommonLua + redisHistoryLua)
)

// NewRedisBroker returns a broker over client. The broker does not own the
// client: Close leaves it open, and the caller closes it after the broker.
//
// Configure the client with MaxRetries -1 (no retries) if a publish must
// never be stored twice: go-redis retries a script whose reply was lost to
// a network error, and without an IdempotencyKey that retry is a second
// event.
func NewRedisBroker(client redis.UniversalClient, opts RedisOptions) *RedisBroker {
	if opts.MetaTTL <= 0 {
		opts.MetaTTL = 24 * time.Hour
	}
	if opts.IdempotencyTTL <= 0 {
		opts.IdempotencyTTL = 24 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &RedisBroker{
		client:  client,
		opts:    opts,
		log:     opts.Logger,
		subs:    make(map[uint16]*redisSub),
		started: make(chan struct{}),
		quit:    make(chan struct{}),
		in:      make(chan redisRecv, redisRecvBuffer),
	}
}

func redisChannel(topic string) string { return "edge:{" + topic + "}" }
func redisMetaKey(topic string) string { return "edge:{" + topic + "}:meta" }
func redisLogKey(topic string) string  { return "edge:{" + topic + "}:log" }

// redisTopic returns the topic of a channel name, false for a foreign one.
func redisTopic(channel string) (string, bool) {
	t, ok := strings.CutPrefix(channel, "edge:{")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(t, "}")
}

// redisUnavailable marks a Redis failure so that callers can match
// ErrUnavailable while the cause (a timeout, a cancelled context) stays
// matchable too.
// Every failure is treated alike: whatever Redis or the network said, the
// operation did not happen and may be retried.
func redisUnavailable(err error) error {
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// redisMillis converts d to whole milliseconds, at least 1: PEXPIRE 0 would
// delete the key at once.
func redisMillis(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Publish stores (unless p.Ephemeral) and delivers one event.
func (b *RedisBroker) Publish(ctx context.Context, p Publication) (PublishResult, error) {
	if err := p.Normalize(); err != nil {
		return PublishResult{}, err
	}
	if b.closed.Load() {
		return PublishResult{}, ErrClosed
	}
	if p.Ephemeral {
		return b.publishEphemeral(ctx, p)
	}
	r := b.opts.Retention.For(p.Topic)
	keys := []string{redisMetaKey(p.Topic), redisLogKey(p.Topic)}
	if p.IdempotencyKey != "" {
		keys = append(keys, "edge:{"+p.Topic+"}:idem:"+p.IdempotencyKey)
	}
	cmd := "PUBLISH"
	if b.opts.Sharded {
		cmd = "SPUBLISH"
	}
	res, err := redisPublishScript.Run(ctx, b.client, keys,
		NewEpoch(), r.MaxEvents, redisMillis(r.MaxAge), redisMillis(max(b.opts.MetaTTL, r.MaxAge)),
		redisMillis(b.opts.IdempotencyTTL), cmd, redisChannel(p.Topic), p.Type, []byte(p.Data),
	).Slice()
	if err != nil {
		return PublishResult{}, redisUnavailable(err)
	}
	if len(res) != 4 {
		return PublishResult{}, redisUnavailable(fmt.Errorf("publish script returned %d values", len(res)))
	}
	epoch, _ := res[0].(string)
	seq, _ := res[1].(int64)
	ts, _ := res[2].(int64)
	dup, _ := res[3].(int64)
	return PublishResult{Position: Position{epoch, uint64(seq)}, Time: ts, Duplicate: dup == 1}, nil
}

// publishEphemeral sends p without storing it. Its time is this node's
// clock, since no script runs to read Redis's.
func (b *RedisBroker) publishEphemeral(ctx context.Context, p Publication) (PublishResult, error) {
	ts := time.Now().UnixMilli()
	payload := "\n\n" + strconv.FormatInt(ts, 10) + "\n" + p.Type + "\n" + string(p.Data)
	var err error
	if b.opts.Sharded {
		err = b.client.SPublish(ctx, redisChannel(p.Topic), payload).Err()
	} else {
		err = b.client.Publish(ctx, redisChannel(p.Topic), payload).Err()
	}
	if err != nil {
		return PublishResult{}, redisUnavailable(err)
	}
	return PublishResult{Time: ts}, nil
}

// History returns up to limit stored events of topic after the given
// sequence, oldest first, and the topic's head.
func (b *RedisBroker) History(ctx context.Context, topic string, after uint64, limit int) (History, error) {
	if !ValidTopic(topic) {
		return History{}, fmt.Errorf("%w: %q", ErrInvalidTopic, topic)
	}
	if b.closed.Load() {
		return History{}, ErrClosed
	}
	r := b.opts.Retention.For(topic)
	res, err := redisHistoryScript.Run(ctx, b.client, []string{redisMetaKey(topic), redisLogKey(topic)},
		NewEpoch(), after, max(limit, 0), redisMillis(r.MaxAge), redisMillis(max(b.opts.MetaTTL, r.MaxAge)),
	).Slice()
	if err != nil {
		return History{}, redisUnavailable(err)
	}
	if len(res) != 3 {
		return History{}, redisUnavailable(fmt.Errorf("history script returned %d values", len(res)))
	}
	epoch, _ := res[0].(string)
	seq, _ := res[1].(int64)
	members, _ := res[2].([]any)
	h := History{Head: Position{epoch, uint64(seq)}}
	if len(members) > 0 {
		h.Events = make([]*Event, 0, len(members))
	}
	for _, m := range members {
		s, _ := m.(string)
		ev, err := decodeRedisMember(topic, epoch, s)
		if err != nil {
			// Skipping would hide a gap; failing says something wrote a
			// member this version cannot read.
			return History{}, fmt.Errorf("edge: redis history of %s: %w", topic, err)
		}
		h.Events = append(h.Events, ev)
	}
	return h, nil
}

// decodeRedisMember parses "<seq>\n<ts>\n<type>\n<data>".
func decodeRedisMember(topic, epoch, s string) (*Event, error) {
	seqS, rest, ok1 := strings.Cut(s, "\n")
	tsS, rest, ok2 := strings.Cut(rest, "\n")
	typ, data, ok3 := strings.Cut(rest, "\n")
	if !ok1 || !ok2 || !ok3 {
		return nil, fmt.Errorf("malformed event %.40q", s)
	}
	ev := &Event{Topic: topic, Type: typ, Data: json.RawMessage(data), Epoch: epoch}
	var err error
	if seqS != "" {
		if ev.Seq, err = strconv.ParseUint(seqS, 10, 64); err != nil {
			return nil, fmt.Errorf("malformed event sequence %.40q", s)
		}
	}
	if ev.Time, err = strconv.ParseInt(tsS, 10, 64); err != nil {
		return nil, fmt.Errorf("malformed event time %.40q", s)
	}
	return ev, nil
}

// decodeRedisPayload parses "<epoch>\n<member>" as published.
func decodeRedisPayload(topic, payload string) (*Event, error) {
	epoch, member, ok := strings.Cut(payload, "\n")
	if !ok {
		return nil, fmt.Errorf("malformed payload %.40q", payload)
	}
	return decodeRedisMember(topic, epoch, member)
}

// Ping reports whether Redis answers.
func (b *RedisBroker) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if err := b.client.Ping(ctx).Err(); err != nil {
		return redisUnavailable(err)
	}
	return nil
}

// Close stops Run and closes the broker's pub/sub connections. It leaves the
// client given to NewRedisBroker open: the caller owns it.
func (b *RedisBroker) Close() error {
	b.closed.Store(true)
	b.stop()
	return nil
}
