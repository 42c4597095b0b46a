package gcs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/redis/go-redis/v9"
)

// RedisStorage keeps the tables in Redis so that a restarted head finds
// them again (Ray's GCS fault tolerance).
//
// Key layout, one Redis hash per storage namespace:
//
//	RAY<cluster namespace>@<storage namespace>  →  hash { key: value }
//
// The cluster namespace is RAY_external_storage_namespace, as in Ray, so all
// of one cluster's data is found with the prefix "RAY<cluster namespace>@".
// In the storage namespace "%" is written "%25" and "@" "%40": a key then
// belongs to cluster namespace N exactly when it starts with "RAYN@" and has
// no "@" after that prefix, which keeps cluster "a" from matching the keys of
// cluster "a@b". ray._private.gcs_utils.cleanup_redis_storage (python/ray)
// deletes by the same rule.
type RedisStorage struct {
	client *redis.Client
	prefix string
}

var _ Storage = (*RedisStorage)(nil)

// maxConnectBackoff caps the growing pause between connection attempts.
const maxConnectBackoff = 5 * time.Second

// NewRedisStorage connects to cfg.RedisAddress and waits until Redis
// answers: up to cfg.ConnectRetries attempts, pausing cfg.ConnectWait after
// the first and twice as long after each further one (at most 5 s, or
// ConnectWait when that is longer).
func NewRedisStorage(ctx context.Context, cfg StorageConfig, log logr.Logger) (*RedisStorage, error) {
	ep, err := cfg.redisEndpoint()
	if err != nil {
		return nil, err
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultStorageNamespace
	}
	if cfg.ConnectRetries < 1 {
		cfg.ConnectRetries = 1
	}
	opts := &redis.Options{
		Addr:     ep.hostPort,
		Username: ep.username,
		Password: ep.password,
		DB:       ep.db,
		// Connecting fails in seconds: the start-up loop below and the
		// callers retry. Reads and writes get long enough for a 128 MiB
		// working_dir package; callers' deadlines (health checks) cut them
		// shorter.
		DialTimeout:           2 * time.Second,
		DialerRetries:         1,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		ContextTimeoutEnabled: true,
		DisableIdentity:       true,
	}
	if ep.tls {
		host, _, _ := strings.Cut(ep.hostPort, ":")
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: strings.Trim(host, "[]")}
	}
	r := &RedisStorage{client: redis.NewClient(opts), prefix: "RAY" + cfg.Namespace + "@"}
	wait := cfg.ConnectWait
	limit := max(maxConnectBackoff, cfg.ConnectWait)
	for attempt := 1; ; attempt++ {
		err := r.client.Ping(ctx).Err()
		if err == nil {
			log.Info("Connected to Redis; the GCS tables live there", "address", ep.hostPort, "tls", ep.tls, "namespace", cfg.Namespace)
			return r, nil
		}
		if attempt >= cfg.ConnectRetries {
			_ = r.client.Close()
			return nil, fmt.Errorf("connecting to Redis at %s: no answer after %d attempts (%s, %s): %w",
				ep.hostPort, attempt, EnvRedisConnectRetries, EnvRedisConnectWaitMs, err)
		}
		log.Info("Waiting for Redis; the head cannot start without its storage", "address", ep.hostPort,
			"attempt", attempt, "of", cfg.ConnectRetries, "retryIn", wait.String(), "error", err.Error())
		select {
		case <-ctx.Done():
			_ = r.client.Close()
			return nil, fmt.Errorf("connecting to Redis at %s: %w", ep.hostPort, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, limit)
	}
}

// Close closes the connection pool.
func (r *RedisStorage) Close() error { return r.client.Close() }

// CheckHealth pings Redis.
func (r *RedisStorage) CheckHealth(ctx context.Context) error {
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis at %s: %w", r.client.Options().Addr, err)
	}
	return nil
}

var tableEscaper = strings.NewReplacer("%", "%25", "@", "%40")

func (r *RedisStorage) hash(namespace string) string {
	return r.prefix + tableEscaper.Replace(namespace)
}

func (r *RedisStorage) Get(ctx context.Context, namespace, key string) ([]byte, bool, error) {
	v, err := r.client.HGet(ctx, r.hash(namespace), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s/%s from redis: %w", namespace, key, err)
	}
	return v, true, nil
}

func (r *RedisStorage) Put(ctx context.Context, namespace, key string, value []byte, overwrite bool) (bool, error) {
	if value == nil {
		value = []byte{}
	}
	if !overwrite {
		added, err := r.client.HSetNX(ctx, r.hash(namespace), key, value).Result()
		if err != nil {
			return false, fmt.Errorf("writing %s/%s to redis: %w", namespace, key, err)
		}
		return added, nil
	}
	n, err := r.client.HSet(ctx, r.hash(namespace), key, value).Result()
	if err != nil {
		return false, fmt.Errorf("writing %s/%s to redis: %w", namespace, key, err)
	}
	return n == 1, nil
}

func (r *RedisStorage) Delete(ctx context.Context, namespace, key string) (bool, error) {
	n, err := r.client.HDel(ctx, r.hash(namespace), key).Result()
	if err != nil {
		return false, fmt.Errorf("deleting %s/%s from redis: %w", namespace, key, err)
	}
	return n == 1, nil
}

func (r *RedisStorage) Keys(ctx context.Context, namespace, prefix string) ([]string, error) {
	all, err := r.client.HKeys(ctx, r.hash(namespace)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing %s from redis: %w", namespace, err)
	}
	keys := all[:0]
	for _, k := range all {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if len(keys) == 0 {
		return nil, nil
	}
	return keys, nil
}
