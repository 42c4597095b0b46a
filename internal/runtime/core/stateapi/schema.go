package stateapi

import (
	"slices"
	"sort"
)

// colType is how a column's filter value is read and compared.
type colType int

const (
	textCol colType = iota
	intCol
	boolCol
	// otherCol holds maps and lists, which Ray does not filter on.
	otherCol
)

// column is one field of a resource's rows.
type column struct {
	name       string
	typ        colType
	filterable bool
	// detail columns are returned only with ?detail=true.
	detail bool
}

// schema is what a resource's rows hold, after Ray's state schemas
// (https://docs.ray.io/en/latest/ray-observability/reference/api.html#state-apis-schema).
type schema struct {
	// id is the column rows are sorted by and `ray get` looks up.
	id string
	// sorted is false where Ray keeps the sources' order (jobs).
	sorted  bool
	columns []column
	// unreported are columns Ray's schema has and filters on that this
	// runtime does not fill; a filter on one is refused, not run against
	// values that are always empty.
	unreported []string
}

func base(name string, typ colType) column { return column{name: name, typ: typ, filterable: true} }

func detailCol(name string, typ colType, filterable bool) column {
	return column{name: name, typ: typ, filterable: filterable, detail: true}
}

// schemas are the listable resources, by their name in /api/v0/{name}.
var schemas = map[string]schema{
	"actors": {id: "actor_id", sorted: true, columns: []column{
		base("actor_id", textCol), base("class_name", textCol), base("state", textCol), base("job_id", textCol),
		base("name", textCol), base("node_id", textCol), base("pid", intCol), base("ray_namespace", textCol),
		detailCol("required_resources", otherCol, false), detailCol("death_cause", otherCol, false),
		detailCol("is_detached", boolCol, false), detailCol("num_restarts", intCol, false),
	}, unreported: []string{"placement_group_id", "repr_name"}},
	"tasks": {id: "task_id", sorted: true, columns: []column{
		base("task_id", textCol), base("attempt_number", intCol), base("name", textCol), base("state", textCol),
		base("job_id", textCol), base("actor_id", textCol), base("type", textCol), base("func_or_class_name", textCol),
		base("node_id", textCol), base("error_type", textCol),
		detailCol("language", textCol, true), detailCol("required_resources", otherCol, false),
	}, unreported: []string{"parent_task_id", "worker_id", "worker_pid", "placement_group_id", "is_debugger_paused"}},
	"nodes": {id: "node_id", sorted: true, columns: []column{
		base("node_id", textCol), base("node_ip", textCol), base("is_head_node", boolCol), base("state", textCol),
		base("node_name", textCol), {name: "resources_total", typ: otherCol}, {name: "labels", typ: otherCol},
	}},
	"jobs": {id: "submission_id", columns: []column{
		base("job_id", textCol), base("submission_id", textCol), {name: "entrypoint", typ: textCol},
		base("type", textCol), base("status", textCol), {name: "message", typ: textCol},
		{name: "error_type", typ: textCol}, {name: "driver_info", typ: otherCol},
	}},
	"objects": {id: "object_id", sorted: true, columns: []column{
		base("object_id", textCol), base("object_size", intCol), base("task_status", textCol),
		base("reference_type", textCol), base("type", textCol), base("ip", textCol),
		detailCol("job_id", textCol, false),
	}, unreported: []string{"call_site", "pid"}},
	"workers": {id: "worker_id", sorted: true, columns: []column{
		base("worker_id", textCol), base("is_alive", boolCol), base("worker_type", textCol), base("exit_type", textCol),
		base("node_id", textCol), base("ip", textCol), base("pid", intCol), base("exit_detail", textCol),
		detailCol("start_time_ms", intCol, false),
	}},
	"placement_groups": {id: "placement_group_id", sorted: true, columns: []column{
		base("placement_group_id", textCol), base("name", textCol), base("creator_job_id", textCol),
		base("state", textCol), detailCol("bundles", otherCol, false), detailCol("is_detached", boolCol, true),
	}},
}

// unlisted are Ray's state resources this runtime does not list, with why.
var unlisted = map[string]string{
	"runtime_envs":   "this runtime does not report runtime environments to the state API",
	"cluster_events": "this runtime does not record cluster events",
}

// Kinds are the resources the API lists, in /api/v0/{kind}'s words.
var Kinds = func() []string {
	out := make([]string, 0, len(schemas))
	for k := range schemas {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}()

func (s schema) column(name string) (column, bool) {
	i := slices.IndexFunc(s.columns, func(c column) bool { return c.name == name })
	if i < 0 {
		return column{}, false
	}
	return s.columns[i], true
}

func (s schema) filterable() []string {
	var out []string
	for _, c := range s.columns {
		if c.filterable {
			out = append(out, c.name)
		}
	}
	return out
}

// project keeps a row's base columns, or all of it for detail.
func (s schema) project(row map[string]any, detail bool) map[string]any {
	if detail {
		return row
	}
	out := make(map[string]any, len(s.columns))
	for _, c := range s.columns {
		if !c.detail {
			out[c.name] = row[c.name]
		}
	}
	return out
}
