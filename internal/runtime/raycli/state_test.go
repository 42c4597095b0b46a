package raycli

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"sigs.k8s.io/yaml"

	"github.com/rayk8s/rayk8s/internal/runtime/core/stateapi"
	corev1 "github.com/rayk8s/rayk8s/proto/core/v1"
	gcsv1 "github.com/rayk8s/rayk8s/proto/gcs/v1"
)

// stateDashboard serves the head's real state API handler over the head's
// node table and placement groups (neither needs a node agent).
func stateDashboard(t *testing.T) string {
	t.Helper()
	nodes := []*gcsv1.Node{
		{NodeId: "head1", NodeIpAddress: "10.0.0.1", IsHead: true, State: gcsv1.NodeState_NODE_STATE_ALIVE, ResourcesTotal: map[string]float64{"CPU": 4}},
		{NodeId: "work2", NodeIpAddress: "10.0.0.2", State: gcsv1.NodeState_NODE_STATE_ALIVE},
		{NodeId: "gone3", NodeIpAddress: "10.0.0.3", State: gcsv1.NodeState_NODE_STATE_DEAD},
	}
	groups := []*corev1.PlacementGroup{
		{PlacementGroupId: "pgA", Name: "train", JobId: "01000000", State: corev1.PlacementGroupState_PLACEMENT_GROUP_STATE_CREATED,
			Bundles: []*corev1.Bundle{{Resources: map[string]float64{"CPU": 1}, NodeId: "head1"}}},
	}
	h := stateapi.NewHandler(stateapi.Options{
		Nodes:           func() []*gcsv1.Node { return nodes },
		PlacementGroups: func() []*corev1.PlacementGroup { return groups },
		Logger:          logr.Discard(),
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestParseFilter(t *testing.T) {
	for _, c := range []struct{ in, key, pred, value, err string }{
		{in: "state=ALIVE", key: "state", pred: "=", value: "ALIVE"},
		{in: "state!=DEAD", key: "state", pred: "!=", value: "DEAD"},
		{in: "name=a=b", key: "name", pred: "=", value: "a=b"},
		{in: "name=a!=b", key: "name", pred: "=", value: "a!=b"},
		{in: "name!=!x", key: "name", pred: "!=", value: "!x"},
		{in: "state", err: `--filter "state": no predicate; write key=value or key!=value`},
		{in: "state!", err: "no predicate"},
		{in: "=ALIVE", err: `--filter "=ALIVE": a filter needs a key and a value`},
		{in: "state=", err: "a filter needs a key and a value"},
		{in: "state!=", err: "a filter needs a key and a value"},
	} {
		k, p, v, err := parseFilter(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseFilter(%q) = %v, want an error containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || k != c.key || p != c.pred || v != c.value {
			t.Errorf("parseFilter(%q) = %q %q %q %v, want %q %q %q", c.in, k, p, v, err, c.key, c.pred, c.value)
		}
	}
}

func TestListFiltersLimitAndFormats(t *testing.T) {
	addr := stateDashboard(t)
	code, out, stderr := runCLI(nil, "list", "nodes", "--address", addr, "--filter", "state=alive", "-f", "is_head_node!=true", "--format", "json")
	if code != 0 {
		t.Fatalf("ray list nodes with filters: exit %d, %s", code, stderr)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 || rows[0]["node_id"] != "work2" {
		t.Fatalf("ray list nodes state=alive is_head_node!=true = %s (%v), want only work2", out, err)
	}

	code, out, stderr = runCLI(nil, "list", "nodes", "--address", addr, "--limit", "1")
	if code != 0 || !strings.Contains(out, "Total: 1\n") || !strings.Contains(out, "the first 1 of 3") || !strings.Contains(out, "gone3") || strings.Contains(out, "head1") {
		t.Errorf("ray list nodes --limit 1: exit %d, stderr %q; want only gone3, the lowest ID:\n%s", code, stderr, out)
	}

	code, out, _ = runCLI(nil, "list", "placement-groups", "--address", addr, "--format", "yaml")
	var pgs []map[string]any
	if code != 0 || !strings.HasPrefix(out, "---\n") || !strings.HasSuffix(out, "...\n") {
		t.Fatalf("ray list placement-groups --format yaml: exit %d:\n%s", code, out)
	}
	if err := yaml.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(out, "---\n"), "...\n")), &pgs); err != nil ||
		len(pgs) != 1 || pgs[0]["state"] != "CREATED" || pgs[0]["bundles"] != nil {
		t.Errorf("placement groups without --detail = %v (%v), want pgA CREATED without bundles", pgs, err)
	}

	code, out, _ = runCLI(nil, "list", "placement-groups", "--address", addr, "--detail")
	if code != 0 || !strings.Contains(out, "BUNDLES") || !strings.Contains(out, "IS_DETACHED") || !strings.Contains(out, "PLACEMENT_GROUP_ID") {
		t.Errorf("ray list placement-groups --detail: exit %d, want the detail columns:\n%s", code, out)
	}

	code, out, _ = runCLI(nil, "list", "nodes", "--address", addr, "-f", "node_name=nothing")
	if code != 0 || out != "No resource in the cluster\n" {
		t.Errorf("ray list nodes matching nothing: exit %d, %q", code, out)
	}
}

func TestListRefusals(t *testing.T) {
	addr := stateDashboard(t)
	for _, c := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"list", "nodes", "--filter", "state"}, 1, []string{"ray list nodes:", `--filter "state": no predicate`}},
		{[]string{"list", "nodes", "-f", "=x"}, 1, []string{"a filter needs a key and a value"}},
		{[]string{"list", "nodes", "-f", "colour=red"}, 1, []string{"the state API refused the request", `filter column "colour"`, "node_id, node_ip"}},
		{[]string{"list", "nodes", "-f", "is_head_node=maybe"}, 1, []string{`"maybe" is not a boolean`}},
		{[]string{"list", "nodes", "--limit", "0"}, 1, []string{`--limit: "0" is not a positive integer`}},
		{[]string{"list", "nodes", "--limit", "20000"}, 1, []string{"limit: 20000 exceeds"}},
		{[]string{"list", "nodes", "--format", "csv"}, 1, []string{`--format: "csv" is not one of default, json, yaml, table`}},
		{[]string{"list", "runtime-envs"}, 1, []string{"listing runtime_envs is not supported"}},
		{[]string{"list", "widgets"}, 2, []string{`invalid resource "widgets"`, "placement-groups"}},
		{[]string{"list"}, 2, []string{"missing argument RESOURCE"}},
		{[]string{"get", "actors"}, 2, []string{"missing argument ID", "ray list actors"}},
		{[]string{"get", "jobs", "x"}, 2, []string{`invalid resource "jobs"`}},
		{[]string{"summary", "objects"}, 1, []string{"call site"}},
		{[]string{"summary", "nodes"}, 2, []string{`invalid resource "nodes"`}},
	} {
		args := append(append([]string{}, c.args...), "--address", addr)
		code, _, stderr := runCLI(nil, args...)
		if code != c.code {
			t.Errorf("ray %v: exit %d, want %d; stderr %q", c.args, code, c.code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("ray %v: stderr %q lacks %q", c.args, stderr, w)
			}
		}
	}
}

func TestGetByID(t *testing.T) {
	addr := stateDashboard(t)
	code, out, stderr := runCLI(nil, "get", "nodes", "WORK2", "--address", addr)
	if code != 0 {
		t.Fatalf("ray get nodes: exit %d, %s", code, stderr)
	}
	var rows []map[string]any
	if err := yaml.Unmarshal([]byte(strings.TrimSuffix(strings.TrimPrefix(out, "---\n"), "...\n")), &rows); err != nil || len(rows) != 1 || rows[0]["node_id"] != "work2" {
		t.Errorf("ray get nodes WORK2 = %q (%v), want work2 (IDs compare as Ray's filters do)", out, err)
	}
	code, out, _ = runCLI(nil, "get", "placement-groups", "pgA", "--address", addr)
	if code != 0 || !strings.Contains(out, "bundles:") || !strings.Contains(out, "unit_resources:") {
		t.Errorf("ray get placement-groups pgA: exit %d, want every column:\n%s", code, out)
	}
	code, out, _ = runCLI(nil, "get", "nodes", "nope", "--address", addr)
	if code != 0 || out != "Resource with id=nope not found in the cluster.\n" {
		t.Errorf("ray get nodes nope: exit %d, %q", code, out)
	}
}
