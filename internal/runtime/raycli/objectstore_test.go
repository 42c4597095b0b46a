package raycli

import (
	"os"
	"strings"
	"testing"
)

func TestParseStartObjectStore(t *testing.T) {
	opts, _, err := parseStartArgs(t, []string{"--head", "--object-store-memory=80000000", "--object-spilling-directory=/data/spill"}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg := opts.node; cfg.ObjectStoreMemory != 80000000 || cfg.ObjectSpillingDir != "/data/spill" || cfg.Resources["object_store_memory"] != 80000000 {
		t.Errorf("object store = %d bytes, spill dir %q, resource %v", cfg.ObjectStoreMemory, cfg.ObjectSpillingDir, cfg.Resources["object_store_memory"])
	}

	// The default is 30% of the machine's memory, capped, never under the minimum; no spill dir means the session's.
	if opts, _, err = parseStartArgs(t, []string{"--head"}, mapEnv(nil)); err != nil {
		t.Fatal(err)
	}
	want := int64(machineMemory() * defaultObjectStoreShare)
	want = min(max(want, minObjectStoreMemory), int64(maxDefaultObjectStore))
	if opts.node.ObjectStoreMemory != want || opts.node.ObjectSpillingDir != "" {
		t.Errorf("default object store = %d bytes, spill dir %q; want %d and none", opts.node.ObjectStoreMemory, opts.node.ObjectSpillingDir, want)
	}

	// Ray's object_spilling_config, from the environment (which wins) or --system-config.
	cfgJSON := `{"type": "filesystem", "params": {"directory_path": "/from/env"}}`
	if opts, _, err = parseStartArgs(t, []string{"--head", `--system-config={"object_spilling_config": "{\"type\":\"filesystem\",\"params\":{\"directory_path\":[\"/from/sys\"]}}"}`},
		mapEnv(map[string]string{"RAY_object_spilling_config": cfgJSON})); err != nil {
		t.Fatal(err)
	}
	if opts.node.ObjectSpillingDir != "/from/env" {
		t.Errorf("spill dir = %q, want /from/env", opts.node.ObjectSpillingDir)
	}
	if opts, _, err = parseStartArgs(t, []string{"--head", `--system-config={"object_spilling_config": "{\"type\":\"filesystem\",\"params\":{\"directory_path\":[\"/from/sys\"]}}"}`}, mapEnv(nil)); err != nil {
		t.Fatal(err)
	}
	if opts.node.ObjectSpillingDir != "/from/sys" {
		t.Errorf("spill dir = %q, want /from/sys", opts.node.ObjectSpillingDir)
	}

	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--head", "--object-store-memory=1000"}, nil, "at least"},
		{[]string{"--head", "--object-store-memory=lots"}, nil, "--object-store-memory"},
		{[]string{"--head"}, map[string]string{"RAY_object_spilling_config": `{"type": "smart_open", "params": {"uri": "s3://b"}}`}, `type "smart_open" is not supported`},
		{[]string{"--head"}, map[string]string{"RAY_object_spilling_config": `{"type": "filesystem", "params": {"directory_path": ["/a", "/b"]}}`}, "lists 2 directories"},
		{[]string{"--head"}, map[string]string{"RAY_object_spilling_config": `{"type": "filesystem"}`}, "directory_path"},
		{[]string{"--head"}, map[string]string{"RAY_object_spilling_config": `nope`}, "RAY_object_spilling_config"},
	} {
		_, _, err := parseStartArgs(t, c.args, mapEnv(c.env))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseStart(%v, %v) = %v; want an error containing %q", c.args, c.env, err, c.want)
		}
	}
}

func TestMemoryOfTakesTheCgroupLimit(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if v, ok := m[p]; ok {
				return []byte(v), nil
			}
			return nil, os.ErrNotExist
		}
	}
	meminfo := "MemTotal:       16384000 kB\nMemFree: 1 kB\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  float64
	}{
		{"no cgroup", map[string]string{"/proc/meminfo": meminfo}, 16384000 * 1024},
		{"cgroup v2 limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "2147483648\n"}, 2147483648},
		{"cgroup v2 without a limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory.max": "max\n"}, 16384000 * 1024},
		{"cgroup v1 limit", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n"}, 1073741824},
		{"cgroup v1 unlimited", map[string]string{"/proc/meminfo": meminfo, "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 16384000 * 1024},
	} {
		if got := memoryOf(files(tc.files)); got != tc.want {
			t.Errorf("%s: memoryOf = %v, want %v", tc.name, got, tc.want)
		}
	}
}
