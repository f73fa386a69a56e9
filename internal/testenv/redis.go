package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hostportal/idp/storage/pending/redisstore"
)

// DefaultRedisURL is the server RedisURL uses when IDP_TEST_REDIS_URL is not
// set.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// redisDown remembers, per URL, a server that did not answer, so the many
// tests of a package skip at once instead of each waiting for its own dial.
var redisDown sync.Map // url -> error

// RedisURL returns the URL of the Redis named by IDP_TEST_REDIS_URL
// (DefaultRedisURL when unset; any form redisstore.Open takes, Sentinel and
// Cluster included) and a key prefix of t's own, "idptest:<16 hex digits>:".
// When t ends, every key under the prefix is deleted. A server that cannot
// be reached makes t skip (fail in CI); see Unavailable.
func RedisURL(t testing.TB) (url, prefix string) {
	t.Helper()
	url = os.Getenv("IDP_TEST_REDIS_URL")
	if url == "" {
		url = DefaultRedisURL
	}
	if err, ok := redisDown.Load(url); ok {
		Unavailable(t, "Redis", err.(error))
	}
	client, err := redisstore.NewClient(url)
	if err != nil {
		// redisstore's error never quotes the URL, which may hold a password.
		t.Fatalf("testenv: IDP_TEST_REDIS_URL: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		redisDown.Store(url, err)
		Unavailable(t, "Redis", err)
	}

	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		_ = client.Close()
		t.Fatalf("testenv: random key prefix: %v", err)
	}
	// Hex digits and colons hold no glob characters, so the prefix can be
	// used in SCAN MATCH as it is.
	prefix = "idptest:" + hex.EncodeToString(raw[:]) + ":"

	t.Cleanup(func() {
		err := deleteKeys(client, prefix)
		if err := errors.Join(err, client.Close()); err != nil {
			t.Errorf("testenv: delete Redis keys under %s: %v", prefix, err)
		}
	})
	return url, prefix
}

// deleteKeys removes every key that starts with prefix, on each master of a
// cluster. Keys go one UNLINK each (pipelined), as a cluster refuses
// multi-key commands across hash slots.
func deleteKeys(client redis.UniversalClient, prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cc, ok := client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			return deleteKeysOn(ctx, node, prefix)
		})
	}
	return deleteKeysOn(ctx, client, prefix)
}

func deleteKeysOn(ctx context.Context, c redis.UniversalClient, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, prefix+"*", 1000).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range keys {
					p.Unlink(ctx, k)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
