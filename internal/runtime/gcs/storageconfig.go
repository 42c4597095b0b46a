package gcs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
)

// Ray's defaults for reaching Redis at start (redis_db_connect_retries,
// redis_db_connect_wait_milliseconds) and for the storage namespace
// (external_storage_namespace).
const (
	DefaultRedisConnectRetries = 120
	DefaultRedisConnectWait    = 100 * time.Millisecond
	DefaultStorageNamespace    = "default"
)

// The environment variables Ray reads to find its external storage; KubeRay
// sets them on the head from gcsFaultToleranceOptions.
const (
	EnvRedisAddress        = "RAY_REDIS_ADDRESS"
	EnvRedisPassword       = "REDIS_PASSWORD"
	EnvRedisUsername       = "REDIS_USERNAME"
	EnvStorageNamespace    = "RAY_external_storage_namespace"
	EnvRedisConnectRetries = "RAY_redis_db_connect_retries"
	EnvRedisConnectWaitMs  = "RAY_redis_db_connect_wait_milliseconds"
)

// StorageConfig selects where the head keeps its tables. The zero value is
// in-memory storage.
type StorageConfig struct {
	// RedisAddress is host:port, redis://… or rediss://…; empty means the
	// tables live in memory and die with the head.
	RedisAddress string
	Username     string
	Password     string
	// Namespace isolates clusters that share one Redis.
	Namespace string
	// ConnectRetries and ConnectWait bound how long the head waits for Redis
	// at start: that many attempts, the pause between them growing from
	// ConnectWait.
	ConnectRetries int
	ConnectWait    time.Duration
}

// StorageConfigFromEnv reads the storage selection the way Ray does: the
// first address of RAY_REDIS_ADDRESS (KubeRay may pass a comma-separated
// list), credentials from the --redis-password/--redis-username flags, else
// REDIS_PASSWORD/REDIS_USERNAME, else the URL, and the namespace and connect
// knobs from their RAY_ variables.
func StorageConfigFromEnv(getenv func(string) string, flagPassword, flagUsername string) (StorageConfig, error) {
	cfg := StorageConfig{
		RedisAddress:   strings.TrimSpace(strings.Split(getenv(EnvRedisAddress), ",")[0]),
		Password:       cmp.Or(flagPassword, getenv(EnvRedisPassword)),
		Username:       cmp.Or(flagUsername, getenv(EnvRedisUsername)),
		Namespace:      cmp.Or(getenv(EnvStorageNamespace), DefaultStorageNamespace),
		ConnectRetries: DefaultRedisConnectRetries,
		ConnectWait:    DefaultRedisConnectWait,
	}
	if v := getenv(EnvRedisConnectRetries); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return StorageConfig{}, fmt.Errorf("invalid %s %q: want a whole number of attempts of at least 1", EnvRedisConnectRetries, v)
		}
		cfg.ConnectRetries = n
	}
	if v := getenv(EnvRedisConnectWaitMs); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return StorageConfig{}, fmt.Errorf("invalid %s %q: want a non-negative number of milliseconds", EnvRedisConnectWaitMs, v)
		}
		cfg.ConnectWait = time.Duration(n) * time.Millisecond
	}
	if cfg.RedisAddress != "" {
		if _, err := cfg.redisEndpoint(); err != nil {
			return StorageConfig{}, err
		}
	}
	return cfg, nil
}

// NewStorageFromConfig opens the storage cfg selects. For Redis it waits
// until Redis answers, up to cfg.ConnectRetries attempts.
func NewStorageFromConfig(ctx context.Context, cfg StorageConfig, log logr.Logger) (Storage, error) {
	if cfg.RedisAddress == "" {
		if cfg.Password != "" || cfg.Username != "" {
			log.Info("Ignoring the Redis credentials: " + EnvRedisAddress + " is not set, so the GCS keeps its tables in memory")
		}
		return NewMemoryStorage(), nil
	}
	return NewRedisStorage(ctx, cfg, log)
}

// redisEndpoint is the parsed RedisAddress.
type redisEndpoint struct {
	// hostPort is host:port without credentials, safe to log.
	hostPort string
	tls      bool
	db       int
	username string
	password string
}

func (c StorageConfig) redisEndpoint() (redisEndpoint, error) {
	addr := c.RedisAddress
	if !strings.Contains(addr, "://") {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return redisEndpoint{}, fmt.Errorf("invalid %s %q: want host:port, redis://host:port or rediss://host:port: %w", EnvRedisAddress, addr, err)
		}
		return redisEndpoint{hostPort: addr, username: c.Username, password: c.Password}, nil
	}
	u, err := url.Parse(addr)
	if err != nil {
		// The error would repeat the address, password included.
		return redisEndpoint{}, fmt.Errorf("invalid %s: not a URL", EnvRedisAddress)
	}
	ep := redisEndpoint{username: c.Username, password: c.Password}
	switch u.Scheme {
	case "redis":
	case "rediss":
		ep.tls = true
	default:
		return redisEndpoint{}, fmt.Errorf("invalid %s: scheme %q is not redis or rediss", EnvRedisAddress, u.Scheme)
	}
	if u.Hostname() == "" {
		return redisEndpoint{}, fmt.Errorf("invalid %s: the URL has no host", EnvRedisAddress)
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	ep.hostPort = net.JoinHostPort(u.Hostname(), port)
	if ep.password == "" {
		ep.password, _ = u.User.Password()
	}
	if ep.username == "" && u.User != nil {
		ep.username = u.User.Username()
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		if ep.db, err = strconv.Atoi(p); err != nil || ep.db < 0 {
			return redisEndpoint{}, fmt.Errorf("invalid %s: database %q in the URL path is not a number", EnvRedisAddress, p)
		}
	}
	if len(u.Query()) > 0 {
		return redisEndpoint{}, errors.New("invalid " + EnvRedisAddress + ": URL query options are not supported")
	}
	return ep, nil
}
