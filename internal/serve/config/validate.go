// Package config parses and validates Serve deploy configs (the body of
// PUT /api/serve/applications/, see
// https://docs.ray.io/en/latest/serve/api/rest-api.html) and resolves each
// deployment's effective options from defaults, code and config. It is pure:
// no I/O, no clock.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/serve/autoscaling"
)

// FieldError is a validation failure at one field path, e.g.
// applications[0].deployments[1].max_ongoing_requests.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// Errors is every validation failure of one config, in document order.
type Errors []*FieldError

func (e Errors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return fmt.Sprintf("%d validation error(s) for ServeDeploySchema\n%s", len(e), strings.Join(msgs, "\n"))
}

// Parsed is a validated config plus what the controller needs to report it.
type Parsed struct {
	Schema *dashboard.ServeDeploySchema
	// RawApps holds each application exactly as submitted, for
	// deployed_app_config, in the order of Schema.Applications.
	RawApps []json.RawMessage
}

// DefaultAppName is the name of an application that does not set one.
const DefaultAppName = "default"

// Parse validates a deploy config and decodes it. Validation errors are
// returned as Errors naming every offending field.
func Parse(raw []byte) (*Parsed, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, Errors{{Path: "(body)", Msg: fmt.Sprintf("invalid JSON: %v", err)}}
	}
	v := &validator{}
	v.deploy(doc)
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	var schema dashboard.ServeDeploySchema
	if err := json.Unmarshal(raw, &schema); err != nil {
		return nil, Errors{{Path: "(body)", Msg: err.Error()}}
	}
	var top struct {
		Applications []json.RawMessage `json:"applications"`
	}
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, Errors{{Path: "applications", Msg: err.Error()}}
	}
	for i := range schema.Applications {
		if schema.Applications[i].Name == "" {
			schema.Applications[i].Name = DefaultAppName
		}
	}
	return &Parsed{Schema: &schema, RawApps: top.Applications}, nil
}

type validator struct {
	errs Errors
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

func (v *validator) object(path string, x any) (map[string]any, bool) {
	if x == nil {
		return nil, false
	}
	m, ok := x.(map[string]any)
	if !ok {
		v.fail(path, "must be an object, got %s", typeName(x))
	}
	return m, ok
}

func typeName(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", x)
}

// forbidExtra reports keys of m that are not in allowed.
func (v *validator) forbidExtra(path string, m map[string]any, allowed ...string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !contains(allowed, k) {
			v.fail(join(path, k), "extra fields not permitted")
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (v *validator) str(path string, x any, nullable bool) (string, bool) {
	if x == nil {
		if !nullable {
			v.fail(path, "must be a string, got null")
		}
		return "", false
	}
	s, ok := x.(string)
	if !ok {
		v.fail(path, "must be a string, got %s", typeName(x))
	}
	return s, ok
}

func (v *validator) integer(path string, x any) (int64, bool) {
	n, ok := x.(json.Number)
	if !ok {
		v.fail(path, "must be an integer, got %s", typeName(x))
		return 0, false
	}
	i, err := n.Int64()
	if err != nil {
		// 3.0 is an integer to pydantic.
		f, ferr := n.Float64()
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			v.fail(path, "must be an integer, got %s", n.String())
			return 0, false
		}
		i = int64(f)
	}
	return i, true
}

func (v *validator) number(path string, x any) (float64, bool) {
	n, ok := x.(json.Number)
	if !ok {
		v.fail(path, "must be a number, got %s", typeName(x))
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		v.fail(path, "must be a finite number, got %s", n.String())
		return 0, false
	}
	return f, true
}

// maxSeconds is the largest value of a `*_s` field: the whole seconds a
// time.Duration holds, so larger values cannot overflow to negative durations.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// numberAtLeast checks an optional number field; strict means > min. Fields
// in seconds (`*_s`) are also bounded by maxSeconds.
func (v *validator) numberAtLeast(m map[string]any, path, key string, min float64, strict bool) {
	x, ok := m[key]
	if !ok || x == nil {
		return
	}
	f, ok := v.number(join(path, key), x)
	if !ok {
		return
	}
	if strict && f <= min {
		v.fail(join(path, key), "must be greater than %g, got %g", min, f)
	} else if !strict && f < min {
		v.fail(join(path, key), "must be greater than or equal to %g, got %g", min, f)
	} else if strings.HasSuffix(key, "_s") && f > float64(maxSeconds) {
		v.fail(join(path, key), "must be at most %d seconds, got %g", maxSeconds, f)
	}
}

func (v *validator) boolean(path string, x any) {
	if _, ok := x.(bool); !ok && x != nil {
		v.fail(path, "must be a boolean, got %s", typeName(x))
	}
}

func (v *validator) deploy(doc any) {
	m, ok := doc.(map[string]any)
	if !ok {
		v.fail("(body)", "must be a JSON object, got %s", typeName(doc))
		return
	}
	// Extra top-level keys are tolerated, as Ray does for forward
	// compatibility; the legacy single-app format is not.
	if _, ok := m["import_path"]; ok {
		v.fail("import_path", "the single-application config format is not supported; put the application under 'applications'")
	}
	if x, ok := m["proxy_location"]; ok && x != nil {
		if s, ok := v.str("proxy_location", x, true); ok {
			switch s {
			case dashboard.ProxyLocationDisabled, dashboard.ProxyLocationHeadOnly, dashboard.ProxyLocationEveryNode:
			default:
				v.fail("proxy_location", "must be one of 'Disabled', 'HeadOnly', 'EveryNode', got %q", s)
			}
		}
	}
	if ho, ok := v.object("http_options", m["http_options"]); ok {
		v.httpOptions(ho)
	}
	if g, ok := v.object("grpc_options", m["grpc_options"]); ok {
		v.integerIn(g, "grpc_options", "port", 1, 65535)
		if fns, ok := g["grpc_servicer_functions"]; ok && fns != nil {
			v.stringList("grpc_options.grpc_servicer_functions", fns)
		}
		v.numberAtLeast(g, "grpc_options", "request_timeout_s", 0, true)
	}
	if lc, ok := m["logging_config"]; ok {
		v.loggingConfig("logging_config", lc)
	}
	if x, ok := m["target_capacity"]; ok && x != nil {
		if f, ok := v.number("target_capacity", x); ok && (f < 0 || f > 100) {
			v.fail("target_capacity", "must be between 0 and 100, got %g", f)
		}
	}
	apps, ok := m["applications"]
	if !ok || apps == nil {
		v.fail("applications", "field required")
		return
	}
	list, ok := apps.([]any)
	if !ok {
		v.fail("applications", "must be a list, got %s", typeName(apps))
		return
	}
	names := map[string]int{}
	prefixes := map[string]int{}
	for i, a := range list {
		path := index("applications", i)
		am, ok := v.object(path, a)
		if !ok {
			if a == nil {
				v.fail(path, "must be an object, got null")
			}
			continue
		}
		name, prefix, hasPrefix := v.application(path, am)
		if j, dup := names[name]; dup {
			v.fail(join(path, "name"), "application name %q is already used by applications[%d]; names must be unique", name, j)
		} else {
			names[name] = i
		}
		if hasPrefix {
			if j, dup := prefixes[prefix]; dup {
				v.fail(join(path, "route_prefix"), "route_prefix %q is already used by applications[%d]; route prefixes must be unique", prefix, j)
			} else {
				prefixes[prefix] = i
			}
		}
	}
}

func (v *validator) integerIn(m map[string]any, path, key string, lo, hi int64) {
	x, ok := m[key]
	if !ok || x == nil {
		return
	}
	if n, ok := v.integer(join(path, key), x); ok && (n < lo || n > hi) {
		v.fail(join(path, key), "must be between %d and %d, got %d", lo, hi, n)
	}
}

func (v *validator) stringList(path string, x any) {
	l, ok := x.([]any)
	if !ok {
		v.fail(path, "must be a list of strings, got %s", typeName(x))
		return
	}
	for i, e := range l {
		v.str(index(path, i), e, false)
	}
}

func (v *validator) httpOptions(m map[string]any) {
	const p = "http_options"
	for _, k := range []string{"host", "root_path", "ssl_keyfile", "ssl_certfile", "ssl_keyfile_password", "ssl_ca_certs"} {
		if x, ok := m[k]; ok {
			v.str(join(p, k), x, true)
		}
	}
	if rp, ok := m["root_path"].(string); ok && rp != "" && (!strings.HasPrefix(rp, "/") || strings.HasSuffix(rp, "/")) {
		v.fail(join(p, "root_path"), "must start with '/' and not end with '/', got %q", rp)
	}
	v.integerIn(m, p, "port", 1, 65535)
	v.numberAtLeast(m, p, "request_timeout_s", 0, true)
	v.numberAtLeast(m, p, "keep_alive_timeout_s", 0, true)
	key, cert := m["ssl_keyfile"], m["ssl_certfile"]
	if (key == nil) != (cert == nil) {
		v.fail(join(p, "ssl_certfile"), "ssl_keyfile and ssl_certfile must be set together")
	}
}

var logLevels = []string{"DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL", "FATAL", "NOTSET"}

func (v *validator) loggingConfig(path string, x any) {
	m, ok := v.object(path, x)
	if !ok {
		return
	}
	v.forbidExtra(path, m, "encoding", "log_level", "logs_dir", "enable_access_log", "additional_log_standard_attrs")
	if e, ok := m["encoding"]; ok && e != nil {
		if s, ok := v.str(join(path, "encoding"), e, true); ok && s != "TEXT" && s != "JSON" {
			v.fail(join(path, "encoding"), "must be 'TEXT' or 'JSON', got %q", s)
		}
	}
	if l, ok := m["log_level"]; ok && l != nil {
		switch lv := l.(type) {
		case json.Number:
			v.integer(join(path, "log_level"), lv)
		case string:
			if !contains(logLevels, strings.ToUpper(lv)) {
				v.fail(join(path, "log_level"), "unknown log level %q", lv)
			}
		default:
			v.fail(join(path, "log_level"), "must be a level name or number, got %s", typeName(l))
		}
	}
	if d, ok := m["logs_dir"]; ok {
		v.str(join(path, "logs_dir"), d, true)
	}
	if b, ok := m["enable_access_log"]; ok {
		v.boolean(join(path, "enable_access_log"), b)
	}
	if a, ok := m["additional_log_standard_attrs"]; ok && a != nil {
		v.stringList(join(path, "additional_log_standard_attrs"), a)
	}
}

var appFields = []string{"name", "route_prefix", "import_path", "runtime_env", "args", "deployments",
	"logging_config", "autoscaling_policy", "external_scaler_enabled"}

// application validates one app and returns its name and route prefix.
func (v *validator) application(path string, m map[string]any) (name, prefix string, hasPrefix bool) {
	for _, k := range []string{"host", "port"} {
		if _, ok := m[k]; ok {
			v.fail(join(path, k), "%s is set in http_options, not per application", k)
			delete(m, k)
		}
	}
	v.forbidExtra(path, m, appFields...)
	name = DefaultAppName
	if x, ok := m["name"]; ok {
		if s, ok := v.str(join(path, "name"), x, false); ok {
			if strings.TrimSpace(s) == "" {
				v.fail(join(path, "name"), "must not be empty")
			}
			name = s
		}
	}
	prefix, hasPrefix = "/", true
	if x, ok := m["route_prefix"]; ok {
		if x == nil {
			hasPrefix = false
		} else if s, ok := v.str(join(path, "route_prefix"), x, true); ok {
			prefix = s
			if msg := checkRoutePrefix(s); msg != "" {
				v.fail(join(path, "route_prefix"), "%s", msg)
			}
		}
	}
	ip, ok := m["import_path"]
	if !ok {
		v.fail(join(path, "import_path"), "field required")
	} else if s, ok := v.str(join(path, "import_path"), ip, false); ok {
		if msg := checkImportPath(s); msg != "" {
			v.fail(join(path, "import_path"), "%s", msg)
		}
	}
	if re, ok := m["runtime_env"]; ok {
		v.runtimeEnv(join(path, "runtime_env"), re)
	}
	if a, ok := m["args"]; ok && a != nil {
		v.object(join(path, "args"), a)
	}
	if lc, ok := m["logging_config"]; ok {
		v.loggingConfig(join(path, "logging_config"), lc)
	}
	if ap, ok := m["autoscaling_policy"]; ok && ap != nil {
		// Only Ray's default per-deployment policy runs; an application-level
		// policy would otherwise be accepted and ignored.
		if am, ok := v.object(join(path, "autoscaling_policy"), ap); ok && len(am) > 0 {
			v.fail(join(path, "autoscaling_policy"), "application-level autoscaling policies are not supported; set autoscaling_config on the deployments")
		}
	}
	external := false
	if b, ok := m["external_scaler_enabled"]; ok {
		v.boolean(join(path, "external_scaler_enabled"), b)
		external, _ = b.(bool)
		if external {
			// Ray's external scaling API (POST .../deployments/{name}/scale) is not served,
			// so an application waiting for an external scaler would never scale.
			v.fail(join(path, "external_scaler_enabled"), "external scaling is not supported; leave it false and set autoscaling_config on the deployments")
		}
	}
	if ds, ok := m["deployments"]; ok && ds != nil {
		list, ok := ds.([]any)
		if !ok {
			v.fail(join(path, "deployments"), "must be a list, got %s", typeName(ds))
			return
		}
		seen := map[string]int{}
		for i, d := range list {
			dp := index(join(path, "deployments"), i)
			dm, ok := d.(map[string]any)
			if !ok {
				v.fail(dp, "must be an object, got %s", typeName(d))
				continue
			}
			dn := v.deployment(dp, dm, external)
			if j, dup := seen[dn]; dup && dn != "" {
				v.fail(join(dp, "name"), "deployment name %q is already used by deployments[%d]", dn, j)
			} else {
				seen[dn] = i
			}
		}
	}
	return name, prefix, hasPrefix
}

// checkRoutePrefix applies Ray's route_prefix rules.
func checkRoutePrefix(s string) string {
	switch {
	case !strings.HasPrefix(s, "/"):
		return fmt.Sprintf("route_prefix must start with '/', got %q", s)
	case s != "/" && strings.HasSuffix(s, "/"):
		return fmt.Sprintf("route_prefix must not end with '/' unless it is the root, got %q", s)
	case strings.ContainsAny(s, "{}"):
		return fmt.Sprintf("route_prefix may not contain wildcards ('{' or '}'), got %q", s)
	}
	return ""
}

// checkImportPath applies Ray's import_path format: module.sub:attr or
// module.sub.attr.
func checkImportPath(s string) string {
	if strings.TrimSpace(s) == "" {
		return "must not be empty"
	}
	if strings.ContainsAny(s, " \t\n") {
		return fmt.Sprintf("must not contain whitespace, got %q", s)
	}
	switch strings.Count(s, ":") {
	case 0:
		if !strings.Contains(strings.Trim(s, "."), ".") {
			return fmt.Sprintf("got %q; it must be of the form 'module.path:attribute' or 'module.path.attribute'", s)
		}
	case 1:
		if strings.HasPrefix(s, ":") || strings.HasSuffix(s, ":") {
			return fmt.Sprintf("got %q; the ':' must separate a module path and an attribute", s)
		}
	default:
		return fmt.Sprintf("got %q; it may contain at most one ':'", s)
	}
	return ""
}

func (v *validator) runtimeEnv(path string, x any) {
	m, ok := v.object(path, x)
	if !ok {
		return
	}
	if wd, ok := m["working_dir"]; ok {
		v.str(join(path, "working_dir"), wd, true)
	}
	if pm, ok := m["py_modules"]; ok && pm != nil {
		v.stringList(join(path, "py_modules"), pm)
	}
	if ev, ok := m["env_vars"]; ok && ev != nil {
		if em, ok := v.object(join(path, "env_vars"), ev); ok {
			keys := make([]string, 0, len(em))
			for k := range em {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v.str(join(path, "env_vars")+"."+k, em[k], false)
			}
		}
	}
	if pip, ok := m["pip"]; ok && pip != nil {
		// pip would need the network; Python replicas run on what the image has.
		v.fail(join(path, "pip"), "installing packages is not supported; bake them into the image")
	}
}

var deploymentFields = []string{"name", "num_replicas", "max_ongoing_requests", "max_queued_requests", "user_config",
	"autoscaling_config", "graceful_shutdown_wait_loop_s", "graceful_shutdown_timeout_s", "health_check_period_s",
	"health_check_timeout_s", "ray_actor_options", "placement_group_bundles", "placement_group_strategy",
	"max_replicas_per_node", "logging_config", "request_router_config"}

func (v *validator) deployment(path string, m map[string]any, external bool) string {
	v.forbidExtra(path, m, deploymentFields...)
	name := ""
	if x, ok := m["name"]; !ok {
		v.fail(join(path, "name"), "field required")
	} else if s, ok := v.str(join(path, "name"), x, false); ok {
		if strings.TrimSpace(s) == "" {
			v.fail(join(path, "name"), "must not be empty")
		}
		if strings.Contains(s, "#") {
			v.fail(join(path, "name"), "must not contain '#', got %q", s)
		}
		name = s
	}
	autoscaling := m["autoscaling_config"] != nil
	if x, ok := m["num_replicas"]; ok && x != nil {
		p := join(path, "num_replicas")
		switch n := x.(type) {
		case string:
			if n != "auto" {
				v.fail(p, "must be a non-negative integer or \"auto\", got %q", n)
			}
		case json.Number:
			if i, ok := v.integer(p, n); ok {
				if i < 0 {
					v.fail(p, "must be a non-negative integer or \"auto\", got %d", i)
				} else if autoscaling {
					v.fail(p, "manually setting num_replicas is not allowed when autoscaling_config is provided")
				}
			}
		default:
			v.fail(p, "must be a non-negative integer or \"auto\", got %s", typeName(x))
		}
	}
	if x, ok := m["max_ongoing_requests"]; ok && x != nil {
		if n, ok := v.integer(join(path, "max_ongoing_requests"), x); ok && n <= 0 {
			v.fail(join(path, "max_ongoing_requests"), "must be greater than 0, got %d", n)
		}
	}
	if x, ok := m["max_queued_requests"]; ok && x != nil {
		if n, ok := v.integer(join(path, "max_queued_requests"), x); ok && n != -1 && n < 1 {
			v.fail(join(path, "max_queued_requests"), "must be -1 (no limit) or greater than 0, got %d", n)
		}
	}
	if x, ok := m["user_config"]; ok && x != nil {
		v.object(join(path, "user_config"), x)
	}
	if x, ok := m["autoscaling_config"]; ok && x != nil {
		if external {
			v.fail(join(path, "autoscaling_config"), "must not be set when the application has external_scaler_enabled")
		}
		if am, ok := v.object(join(path, "autoscaling_config"), x); ok {
			v.autoscaling(join(path, "autoscaling_config"), am)
		}
	}
	v.numberAtLeast(m, path, "graceful_shutdown_wait_loop_s", 0, false)
	v.numberAtLeast(m, path, "graceful_shutdown_timeout_s", 0, false)
	v.numberAtLeast(m, path, "health_check_period_s", 0, true)
	v.numberAtLeast(m, path, "health_check_timeout_s", 0, true)
	if x, ok := m["ray_actor_options"]; ok && x != nil {
		if am, ok := v.object(join(path, "ray_actor_options"), x); ok {
			v.actorOptions(join(path, "ray_actor_options"), am)
		}
	}
	bundles := false
	if x, ok := m["placement_group_bundles"]; ok && x != nil {
		p := join(path, "placement_group_bundles")
		if l, ok := x.([]any); !ok {
			v.fail(p, "must be a list of resource maps, got %s", typeName(x))
		} else {
			bundles = true
			if len(l) == 0 {
				v.fail(p, "must contain at least one bundle")
			}
			for i, b := range l {
				v.resourceMap(index(p, i), b, true)
			}
		}
	}
	if x, ok := m["placement_group_strategy"]; ok && x != nil {
		p := join(path, "placement_group_strategy")
		if s, ok := v.str(p, x, true); ok {
			if !contains([]string{"PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"}, s) {
				v.fail(p, "must be one of PACK, SPREAD, STRICT_PACK, STRICT_SPREAD, got %q", s)
			} else if !bundles {
				v.fail(p, "requires placement_group_bundles")
			}
		}
	}
	if x, ok := m["max_replicas_per_node"]; ok && x != nil {
		p := join(path, "max_replicas_per_node")
		if n, ok := v.integer(p, x); ok {
			if n < 1 || n > 100 {
				v.fail(p, "must be between 1 and 100, got %d", n)
			} else if bundles {
				v.fail(p, "cannot be set together with placement_group_bundles")
			}
		}
	}
	if lc, ok := m["logging_config"]; ok {
		v.loggingConfig(join(path, "logging_config"), lc)
	}
	if x, ok := m["request_router_config"]; ok && x != nil {
		if rm, ok := v.object(join(path, "request_router_config"), x); ok {
			p := join(path, "request_router_config")
			v.forbidExtra(p, rm, "request_router_class", "request_router_kwargs", "request_routing_stats_period_s", "request_routing_stats_timeout_s")
			if c, ok := rm["request_router_class"]; ok && c != nil {
				v.str(join(p, "request_router_class"), c, true)
			}
			v.numberAtLeast(rm, p, "request_routing_stats_period_s", 0, true)
			v.numberAtLeast(rm, p, "request_routing_stats_timeout_s", 0, true)
		}
	}
	return name
}

func (v *validator) autoscaling(path string, m map[string]any) {
	ints := map[string]int64{}
	for _, k := range []string{"min_replicas", "max_replicas", "initial_replicas"} {
		if x, ok := m[k]; ok && x != nil {
			if n, ok := v.integer(join(path, k), x); ok {
				if n < 0 {
					v.fail(join(path, k), "must be greater than or equal to 0, got %d", n)
				}
				ints[k] = n
			}
		}
	}
	minR, hasMin := ints["min_replicas"]
	if !hasMin {
		minR = 1
	}
	maxR, hasMax := ints["max_replicas"]
	if !hasMax {
		maxR = max(1, minR)
	}
	if hasMax && maxR < 1 {
		v.fail(join(path, "max_replicas"), "must be greater than 0, got %d", maxR)
	}
	if minR > maxR {
		v.fail(join(path, "max_replicas"), "must be greater than or equal to min_replicas (%d), got %d", minR, maxR)
	}
	if ini, ok := ints["initial_replicas"]; ok && (ini < minR || ini > maxR) {
		v.fail(join(path, "initial_replicas"), "must be between min_replicas (%d) and max_replicas (%d), got %d", minR, maxR, ini)
	}
	for _, k := range []string{"target_ongoing_requests", "target_num_ongoing_requests_per_replica", "upscaling_factor", "downscaling_factor", "smoothing_factor", "upscale_smoothing_factor", "downscale_smoothing_factor", "metrics_interval_s", "look_back_period_s"} {
		v.numberAtLeast(m, path, k, 0, true)
	}
	for _, k := range []string{"upscale_delay_s", "downscale_delay_s", "downscale_to_zero_delay_s"} {
		v.numberAtLeast(m, path, k, 0, false)
	}
	if x, ok := m["aggregation_function"]; ok && x != nil {
		if s, ok := v.str(join(path, "aggregation_function"), x, true); ok && !contains([]string{"mean", "max", "min"}, s) {
			v.fail(join(path, "aggregation_function"), "must be 'mean', 'max' or 'min', got %q", s)
		}
	}
	// The policy's own parser also refuses unknown fields and custom
	// policies; fields already reported above are not reported twice.
	reported := map[string]bool{}
	for _, e := range v.errs {
		reported[e.Path] = true
	}
	if _, err := autoscaling.Parse(path, m); err != nil {
		var fes autoscaling.Errors
		if errors.As(err, &fes) {
			for _, fe := range fes {
				if !reported[fe.Field] {
					v.fail(fe.Field, "%s", fe.Reason)
				}
			}
		}
	}
}

func (v *validator) actorOptions(path string, m map[string]any) {
	v.forbidExtra(path, m, "runtime_env", "num_cpus", "num_gpus", "memory", "resources", "accelerator_type", "label_selector")
	for _, k := range []string{"num_cpus", "num_gpus", "memory"} {
		v.numberAtLeast(m, path, k, 0, false)
	}
	if x, ok := m["resources"]; ok && x != nil {
		v.resourceMap(join(path, "resources"), x, false)
	}
	if x, ok := m["accelerator_type"]; ok {
		v.str(join(path, "accelerator_type"), x, true)
	}
	if x, ok := m["runtime_env"]; ok && x != nil {
		v.runtimeEnv(join(path, "runtime_env"), x)
	}
}

func (v *validator) resourceMap(path string, x any, nonEmpty bool) {
	m, ok := v.object(path, x)
	if !ok {
		if x == nil {
			v.fail(path, "must be an object, got null")
		}
		return
	}
	if nonEmpty && len(m) == 0 {
		v.fail(path, "must not be empty")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v.numberAtLeast(m, path, k, 0, false)
	}
}

// IsValidation reports whether err is a config validation failure (a 400).
func IsValidation(err error) bool {
	var e Errors
	var fe *FieldError
	return errors.As(err, &e) || errors.As(err, &fe)
}
