package raycli

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/rayk8s/rayk8s/internal/runtime/node"
)

// Object store sizing as Ray's: by default 30% of the machine's memory,
// capped at 200 GB, and never below 75 MiB
// (https://docs.ray.io/en/latest/ray-core/scheduling/memory-management.html).
const (
	defaultObjectStoreShare = 0.3
	maxDefaultObjectStore   = 200e9
	minObjectStoreMemory    = 75 * 1024 * 1024
)

// parseObjectStore sets the node's object store limit and spill directory
// from --object-store-memory, --object-spilling-directory and Ray's
// object_spilling_config (RAY_object_spilling_config, else the
// --system-config key of that name).
func parseObjectStore(cfg *node.Config, p *parsedFlags, systemConfig string, getenv env) error {
	if v := unquote(p.str("object-store-memory")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > math.MaxInt64 {
			return fmt.Errorf("invalid --object-store-memory %q: expected a number of bytes", v)
		}
		if f < minObjectStoreMemory {
			return fmt.Errorf("invalid --object-store-memory %q: the object store needs at least %d bytes (75 MiB)", v, minObjectStoreMemory)
		}
		cfg.ObjectStoreMemory = int64(f)
	} else {
		cfg.ObjectStoreMemory = int64(math.Max(minObjectStoreMemory, math.Min(maxDefaultObjectStore, machineMemory()*defaultObjectStoreShare)))
	}
	if dir := unquote(p.str("object-spilling-directory")); dir != "" {
		cfg.ObjectSpillingDir = dir
		return nil
	}
	raw, from := getenv("RAY_object_spilling_config"), "RAY_object_spilling_config"
	if raw == "" && systemConfig != "" {
		sys := map[string]any{}
		if err := json.Unmarshal([]byte(systemConfig), &sys); err != nil {
			return fmt.Errorf("invalid --system-config: %w", err)
		}
		// Ray takes the setting as a JSON string; an object is accepted too.
		switch v := sys["object_spilling_config"].(type) {
		case string:
			raw = v
		case map[string]any:
			b, _ := json.Marshal(v)
			raw = string(b)
		case nil:
		default:
			return fmt.Errorf("invalid --system-config object_spilling_config: expected a JSON string, got %T", v)
		}
		from = "--system-config object_spilling_config"
	}
	if raw == "" {
		return nil
	}
	dir, err := spillingDirectory(raw)
	if err != nil {
		return fmt.Errorf("invalid %s: %w", from, err)
	}
	cfg.ObjectSpillingDir = dir
	return nil
}

// spillingDirectory reads the one setting of Ray's object_spilling_config
// this runtime implements: spilling to a local filesystem directory.
func spillingDirectory(raw string) (string, error) {
	var c struct {
		Type   string `json:"type"`
		Params struct {
			DirectoryPath json.RawMessage `json:"directory_path"`
		} `json:"params"`
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return "", fmt.Errorf("expected a JSON object such as {\"type\": \"filesystem\", \"params\": {\"directory_path\": \"/tmp/spill\"}}: %w", err)
	}
	if c.Type != "filesystem" {
		return "", fmt.Errorf("type %q is not supported: this runtime spills to a local directory only (type \"filesystem\")", c.Type)
	}
	var one string
	if err := json.Unmarshal(c.Params.DirectoryPath, &one); err == nil && one != "" {
		return one, nil
	}
	var many []string
	if err := json.Unmarshal(c.Params.DirectoryPath, &many); err == nil && len(many) == 1 && many[0] != "" {
		return many[0], nil
	}
	if len(many) > 1 {
		return "", fmt.Errorf("params.directory_path lists %d directories: this runtime spills to one", len(many))
	}
	return "", fmt.Errorf("params.directory_path must name a directory")
}
