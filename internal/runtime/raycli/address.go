package raycli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rayk8s/rayk8s/internal/runtime/gcs"
	"github.com/rayk8s/rayk8s/internal/runtime/node"
	"github.com/rayk8s/rayk8s/internal/runtime/raytls"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// env looks up environment variables; tests pass a map-backed one.
type env func(string) string

// tempRoot is Ray's default temp dir: $RAY_TMPDIR/ray, else /tmp/ray.
func tempRoot(getenv env) string {
	if d := getenv("RAY_TMPDIR"); d != "" {
		return filepath.Join(d, "ray")
	}
	return filepath.Join(os.TempDir(), "ray")
}

// resolveGCSAddress finds the control service for status and health-check:
// the flag, else RAY_ADDRESS, else the local head recorded by `ray start`.
func resolveGCSAddress(flagAddr string, getenv env) (string, error) {
	addr := flagAddr
	if addr == "" || addr == "auto" {
		addr = getenv("RAY_ADDRESS")
	}
	if addr == "" || addr == "auto" {
		raw, err := os.ReadFile(filepath.Join(tempRoot(getenv), node.CurrentClusterFile))
		if err != nil {
			return "", errors.New("could not find any running Ray instance; pass --address or set RAY_ADDRESS")
		}
		addr = strings.TrimSpace(string(raw))
	}
	if strings.Contains(addr, "://") {
		return "", fmt.Errorf("address %q is not a GCS address (host:port)", addr)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fmt.Errorf("invalid GCS address %q: %w", addr, err)
	}
	return addr, nil
}

// resolveDashboardURL follows Ray's job CLI: RAY_API_SERVER_ADDRESS, then
// RAY_ADDRESS override the flag; http(s) URLs are used as they are; a
// ray:// client address maps to its host's port 8265; a bare host:port is a
// GCS address whose KV holds the dashboard's address; nothing at all means
// http://localhost:8265.
func resolveDashboardURL(ctx context.Context, flagAddr string, getenv env) (string, error) {
	addr := flagAddr
	if v := getenv("RAY_API_SERVER_ADDRESS"); v != "" {
		addr = v
	} else if v := getenv("RAY_ADDRESS"); v != "" {
		addr = v
	}
	addr = strings.TrimSpace(addr)
	if addr == "" || addr == "auto" {
		return "http://localhost:8265", nil
	}
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/"), nil
	}
	if rest, ok := strings.CutPrefix(addr, "ray://"); ok {
		u, err := url.Parse("http://" + rest)
		if err != nil {
			return "", fmt.Errorf("invalid address %q: %w", addr, err)
		}
		return "http://" + net.JoinHostPort(u.Hostname(), "8265"), nil
	}
	if strings.Contains(addr, "://") {
		return "", fmt.Errorf("unsupported address %q", addr)
	}
	tlsCfg, err := raytls.ClientFromEnv(getenv)
	if err != nil {
		return "", err
	}
	return dashboardFromGCS(ctx, addr, getenv("RAY_AUTH_TOKEN"), tlsCfg)
}

func dashboardFromGCS(ctx context.Context, gcsAddr, token string, tlsCfg *tls.Config) (string, error) {
	conn, err := gcs.Dial(gcsAddr, gcs.WithAuthToken(token), gcs.WithTLS(tlsCfg))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := gcsv1.NewKVServiceClient(conn).Get(ctx, &gcsv1.KVGetRequest{Namespace: node.DashboardKVNamespace, Key: node.DashboardKVKey})
	if err != nil {
		return "", fmt.Errorf("reading the dashboard address from the GCS at %s: %w", gcsAddr, err)
	}
	if !resp.Found {
		return "", fmt.Errorf("the cluster at %s has no dashboard", gcsAddr)
	}
	return "http://" + string(resp.Value), nil
}
