package edge

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edge-rt/edge/internal/redistest"
)

// TestRedisBrokerCluster runs the conformance suite sharded over a real
// ClusterClient, against a one-node cluster that owns every slot. The
// cluster takes two seconds to accept writes, so its cases share it; Reset
// therefore wipes only the topics its own broker used.
func TestRedisBrokerCluster(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t, "--cluster-enabled", "yes")
	admin := srv.Client(t)
	if err := admin.ClusterAddSlotsRange(t.Context(), 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	redisEventually(t, 10*time.Second, "cluster_state:ok", func() bool {
		return strings.Contains(admin.ClusterInfo(t.Context()).Val(), "cluster_state:ok")
	})
	testBroker(t, func(t *testing.T) wiper {
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}})
		t.Cleanup(func() { c.Close() })
		b := NewRedisBroker(c, RedisOptions{Retention: conformanceRetention, Sharded: true})
		t.Cleanup(func() { b.Close() })
		return &redisTopicWiper{RedisBroker: b, t: t, rdb: c, topics: map[string]bool{}}
	})
}

// redisTopicWiper wipes the state of the topics its broker published to or read,
// as a FLUSHALL would, leaving other tests' topics alone.
type redisTopicWiper struct {
	*RedisBroker
	t      *testing.T
	rdb    redis.UniversalClient
	mu     sync.Mutex
	topics map[string]bool
}

func (w *redisTopicWiper) use(topic string) {
	w.mu.Lock()
	w.topics[topic] = true
	w.mu.Unlock()
}

func (w *redisTopicWiper) Publish(ctx context.Context, p Publication) (PublishResult, error) {
	w.use(p.Topic)
	return w.RedisBroker.Publish(ctx, p)
}

func (w *redisTopicWiper) History(ctx context.Context, topic string, after uint64, limit int) (History, error) {
	w.use(topic)
	return w.RedisBroker.History(ctx, topic, after, limit)
}

func (w *redisTopicWiper) Reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for topic := range w.topics {
		// One DEL per topic: a cluster refuses keys of several slots in one.
		if err := w.rdb.Del(context.Background(), redisMetaKey(topic), redisLogKey(topic)).Err(); err != nil {
			w.t.Fatalf("wiping %s: %v", topic, err)
		}
	}
}
