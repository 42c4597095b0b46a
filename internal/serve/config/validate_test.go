package config

import (
	"encoding/json"
	"errors"
	"github.com/rayk8s/rayk8s/internal/dashboard"
	"strings"
	"testing"
)

const validConfig = `{
  "proxy_location": "EveryNode",
  "http_options": {"host": "0.0.0.0", "port": 8000, "request_timeout_s": 30, "some_future_option": 1},
  "future_top_level_key": true,
  "target_capacity": 50,
  "applications": [
    {"name": "fruit", "route_prefix": "/fruit", "import_path": "fruit:deployment_graph",
     "runtime_env": {"working_dir": "https://example.com/x.zip", "env_vars": {"A": "1"}},
     "deployments": [
       {"name": "Mango", "num_replicas": 3, "max_ongoing_requests": 10, "user_config": {"price": 3},
        "ray_actor_options": {"num_cpus": 0.5, "resources": {"special": 1}}},
       {"name": "Auto", "num_replicas": "auto"},
       {"name": "Scaled", "autoscaling_config": {"min_replicas": 2, "max_replicas": 4}}
     ]},
    {"import_path": "builtin:echo", "route_prefix": null}
  ]
}`

func TestParseValid(t *testing.T) {
	p, err := Parse([]byte(validConfig))
	if err != nil {
		t.Fatal(err)
	}
	apps := p.Schema.Applications
	if len(apps) != 2 || apps[1].Name != DefaultAppName {
		t.Fatalf("applications = %+v, want 2 with the second named default", apps)
	}
	if !apps[1].RoutePrefix.Set || apps[1].RoutePrefix.Value != nil {
		t.Errorf("route_prefix null lost: %+v", apps[1].RoutePrefix)
	}
	if apps[0].RoutePrefix.Value == nil || *apps[0].RoutePrefix.Value != "/fruit" {
		t.Errorf("route_prefix = %+v", apps[0].RoutePrefix)
	}
	var raw map[string]any
	if err := json.Unmarshal(p.RawApps[1], &raw); err != nil || len(raw) != 2 {
		t.Errorf("raw app = %s, want exactly the submitted fields", p.RawApps[1])
	}
	mango := Resolve(apps[0].Deployments[0], apps[0].RuntimeEnv, p.Schema.TargetCapacity)
	if mango.NumReplicas != 2 { // 3 × 50 % = 1.5, rounded half up
		t.Errorf("Mango replicas at 50%% capacity = %d, want 2", mango.NumReplicas)
	}
	if mango.MaxOngoingRequests != 10 || mango.MaxQueuedRequests != -1 || string(mango.UserConfig) != `{"price": 3}` {
		t.Errorf("Mango = %+v", mango)
	}
	if mango.Resources["CPU"] != 0.5 || mango.Resources["special"] != 1 {
		t.Errorf("Mango resources = %v", mango.Resources)
	}
	if env := mango.RuntimeEnv["env_vars"].(map[string]any); env["A"] != "1" {
		t.Errorf("runtime_env not inherited: %v", mango.RuntimeEnv)
	}
	if d := Resolve(apps[0].Deployments[2], nil, nil); d.NumReplicas != 2 {
		t.Errorf("autoscaled replicas = %d, want min_replicas 2", d.NumReplicas)
	}
	d := Resolve(apps[0].Deployments[1], nil, nil)
	if d.NumReplicas != 1 || d.Schema.AutoscalingConfig == nil || d.HealthCheckPeriod.Seconds() != 10 || d.Resources["CPU"] != 1 {
		t.Errorf("auto deployment = %+v", d)
	}
}

func TestParseInvalidNamesTheField(t *testing.T) {
	app := func(extra string) string {
		return `{"applications": [{"name": "a", "import_path": "m:app"` + extra + `}]}`
	}
	dep := func(field string) string {
		return app(`, "deployments": [{"name": "D", ` + field + `}]`)
	}
	cases := []struct {
		body, path string
	}{
		{`[]`, "(body)"},
		{`{`, "(body)"},
		{`{}`, "applications"},
		{`{"applications": {}}`, "applications"},
		{`{"applications": [1]}`, "applications[0]"},
		{`{"proxy_location": "Nowhere", "applications": []}`, "proxy_location"},
		{`{"http_options": {"port": "80"}, "applications": []}`, "http_options.port"},
		{`{"http_options": {"port": 70000}, "applications": []}`, "http_options.port"},
		{`{"http_options": {"request_timeout_s": -1}, "applications": []}`, "http_options.request_timeout_s"},
		{`{"http_options": {"keep_alive_timeout_s": 1e300}, "applications": []}`, "http_options.keep_alive_timeout_s"},
		{`{"http_options": {"root_path": "x"}, "applications": []}`, "http_options.root_path"},
		{`{"http_options": {"ssl_keyfile": "k"}, "applications": []}`, "http_options.ssl_certfile"},
		{`{"grpc_options": {"grpc_servicer_functions": [1]}, "applications": []}`, "grpc_options.grpc_servicer_functions[0]"},
		{`{"target_capacity": 101, "applications": []}`, "target_capacity"},
		{`{"logging_config": {"encoding": "XML"}, "applications": []}`, "logging_config.encoding"},
		{`{"logging_config": {"log_level": "LOUD"}, "applications": []}`, "logging_config.log_level"},
		{`{"applications": [{"name": "a"}]}`, "applications[0].import_path"},
		{app(`, "unknown": 1`), "applications[0].unknown"},
		{app(`, "host": "0.0.0.0"`), "applications[0].host"},
		{app(`, "port": 1`), "applications[0].port"},
		{`{"applications": [{"name": "", "import_path": "m:app"}]}`, "applications[0].name"},
		{`{"applications": [{"name": 3, "import_path": "m:app"}]}`, "applications[0].name"},
		{`{"applications": [{"name": "a", "import_path": "m:app"}, {"name": "a", "import_path": "m:app", "route_prefix": "/b"}]}`, "applications[1].name"},
		{`{"applications": [{"name": "a", "import_path": "m:app"}, {"name": "b", "import_path": "m:app"}]}`, "applications[1].route_prefix"},
		{app(`, "route_prefix": "noslash"`), "applications[0].route_prefix"},
		{app(`, "route_prefix": "/trailing/"`), "applications[0].route_prefix"},
		{app(`, "route_prefix": "/{id}"`), "applications[0].route_prefix"},
		{`{"applications": [{"name": "a", "import_path": "nodots"}]}`, "applications[0].import_path"},
		{`{"applications": [{"name": "a", "import_path": "a:b:c"}]}`, "applications[0].import_path"},
		{`{"applications": [{"name": "a", "import_path": "mod:"}]}`, "applications[0].import_path"},
		{app(`, "runtime_env": []`), "applications[0].runtime_env"},
		{app(`, "runtime_env": {"env_vars": {"A": 1}}`), "applications[0].runtime_env.env_vars.A"},
		{app(`, "runtime_env": {"py_modules": "x"}`), "applications[0].runtime_env.py_modules"},
		{app(`, "runtime_env": {"pip": ["torch"]}`), "applications[0].runtime_env.pip"},
		{app(`, "args": 1`), "applications[0].args"},
		{app(`, "autoscaling_policy": {"policy_function": "my.mod:policy"}`), "applications[0].autoscaling_policy"},
		{app(`, "external_scaler_enabled": "yes"`), "applications[0].external_scaler_enabled"},
		{app(`, "external_scaler_enabled": true`), "applications[0].external_scaler_enabled"},
		{app(`, "deployments": {}`), "applications[0].deployments"},
		{app(`, "deployments": [{}]`), "applications[0].deployments[0].name"},
		{app(`, "deployments": [{"name": "D"}, {"name": "D"}]`), "applications[0].deployments[1].name"},
		{dep(`"bogus": 1`), "applications[0].deployments[0].bogus"},
		{dep(`"num_replicas": -1`), "applications[0].deployments[0].num_replicas"},
		{dep(`"num_replicas": "many"`), "applications[0].deployments[0].num_replicas"},
		{dep(`"num_replicas": 1.5`), "applications[0].deployments[0].num_replicas"},
		{dep(`"num_replicas": 2, "autoscaling_config": {"min_replicas": 1}`), "applications[0].deployments[0].num_replicas"},
		{dep(`"max_ongoing_requests": 0`), "applications[0].deployments[0].max_ongoing_requests"},
		{dep(`"max_ongoing_requests": "5"`), "applications[0].deployments[0].max_ongoing_requests"},
		{dep(`"max_queued_requests": 0`), "applications[0].deployments[0].max_queued_requests"},
		{dep(`"user_config": [1]`), "applications[0].deployments[0].user_config"},
		{dep(`"autoscaling_config": {"min_replicas": 3, "max_replicas": 2}`), "applications[0].deployments[0].autoscaling_config.max_replicas"},
		{dep(`"autoscaling_config": {"initial_replicas": 9, "max_replicas": 2}`), "applications[0].deployments[0].autoscaling_config.initial_replicas"},
		{dep(`"autoscaling_config": {"target_ongoing_requests": 0}`), "applications[0].deployments[0].autoscaling_config.target_ongoing_requests"},
		{dep(`"autoscaling_config": {"aggregation_function": "sum"}`), "applications[0].deployments[0].autoscaling_config.aggregation_function"},
		{dep(`"autoscaling_config": {"upscale_delay": 1}`), "applications[0].deployments[0].autoscaling_config.upscale_delay"},
		{dep(`"autoscaling_config": {"policy": {"policy_function": "my.mod:policy"}}`), "applications[0].deployments[0].autoscaling_config.policy"},
		{dep(`"graceful_shutdown_wait_loop_s": -1`), "applications[0].deployments[0].graceful_shutdown_wait_loop_s"},
		{dep(`"graceful_shutdown_timeout_s": "x"`), "applications[0].deployments[0].graceful_shutdown_timeout_s"},
		{dep(`"health_check_period_s": 0`), "applications[0].deployments[0].health_check_period_s"},
		{dep(`"health_check_period_s": 9223372037`), "applications[0].deployments[0].health_check_period_s"},
		{dep(`"graceful_shutdown_timeout_s": 1e19`), "applications[0].deployments[0].graceful_shutdown_timeout_s"},
		{dep(`"autoscaling_config": {"upscale_delay_s": 1e300}`), "applications[0].deployments[0].autoscaling_config.upscale_delay_s"},
		{dep(`"health_check_timeout_s": 0`), "applications[0].deployments[0].health_check_timeout_s"},
		{dep(`"ray_actor_options": {"num_cpus": -1}`), "applications[0].deployments[0].ray_actor_options.num_cpus"},
		{dep(`"ray_actor_options": {"cpus": 1}`), "applications[0].deployments[0].ray_actor_options.cpus"},
		{dep(`"ray_actor_options": {"resources": {"x": "1"}}`), "applications[0].deployments[0].ray_actor_options.resources.x"},
		{dep(`"ray_actor_options": {"runtime_env": {"env_vars": []}}`), "applications[0].deployments[0].ray_actor_options.runtime_env.env_vars"},
		{dep(`"placement_group_bundles": [{}]`), "applications[0].deployments[0].placement_group_bundles[0]"},
		{dep(`"placement_group_strategy": "PACK"`), "applications[0].deployments[0].placement_group_strategy"},
		{dep(`"placement_group_bundles": [{"CPU": 1}], "placement_group_strategy": "DENSE"`), "applications[0].deployments[0].placement_group_strategy"},
		{dep(`"max_replicas_per_node": 0`), "applications[0].deployments[0].max_replicas_per_node"},
		{dep(`"max_replicas_per_node": 1, "placement_group_bundles": [{"CPU": 1}]`), "applications[0].deployments[0].max_replicas_per_node"},
		{dep(`"logging_config": {"enable_access_log": 1}`), "applications[0].deployments[0].logging_config.enable_access_log"},
		{dep(`"request_router_config": {"request_router_class": 1}`), "applications[0].deployments[0].request_router_config.request_router_class"},
		{app(`, "external_scaler_enabled": true, "deployments": [{"name": "D", "autoscaling_config": {}}]`), "applications[0].deployments[0].autoscaling_config"},
	}
	for _, tc := range cases {
		_, err := Parse([]byte(tc.body))
		if err == nil {
			t.Errorf("Parse(%s) succeeded, want an error at %s", tc.body, tc.path)
			continue
		}
		if !IsValidation(err) {
			t.Errorf("Parse(%s) error %v is not a validation error", tc.body, err)
		}
		var errs Errors
		if !errors.As(err, &errs) {
			t.Fatalf("error type %T", err)
		}
		found := false
		for _, fe := range errs {
			if fe.Path == tc.path {
				found = true
			}
		}
		if !found {
			t.Errorf("Parse(%s) = %v, want an error at %s", tc.body, err, tc.path)
		}
		if !strings.Contains(err.Error(), tc.path) {
			t.Errorf("message %q does not name %s", err.Error(), tc.path)
		}
	}
}

func TestScaleReplicas(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	cases := []struct {
		n    int
		cap  *float64
		want int
	}{
		{3, nil, 3}, {3, f(100), 3}, {3, f(50), 2}, {4, f(50), 2}, {1, f(10), 1}, {5, f(0), 0}, {0, f(50), 0}, {10, f(25), 3},
	}
	for _, tc := range cases {
		if got := ScaleReplicas(tc.n, tc.cap); got != tc.want {
			t.Errorf("ScaleReplicas(%d, %v) = %d, want %d", tc.n, tc.cap, got, tc.want)
		}
	}
}

func TestMergeOverridesOnlySetFields(t *testing.T) {
	five, ten := 5, 10
	code := Resolve(Merge(mustDep(t, `{"name": "D", "max_ongoing_requests": 5, "user_config": {"a": 1}}`), mustDep(t, `{"name": "D", "num_replicas": 2}`)), nil, nil)
	if code.MaxOngoingRequests != five || code.NumReplicas != 2 || string(code.UserConfig) != `{"a": 1}` {
		t.Errorf("merged = %+v", code)
	}
	cleared := Resolve(Merge(mustDep(t, `{"name": "D", "max_ongoing_requests": 10, "user_config": {"a": 1}}`), mustDep(t, `{"name": "D", "user_config": null}`)), nil, nil)
	if cleared.UserConfig != nil || cleared.MaxOngoingRequests != ten {
		t.Errorf("explicit null user_config did not clear: %+v", cleared)
	}
}

func mustDep(t *testing.T, s string) (d depSchema) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

type depSchema = dashboard.DeploymentSchema

func TestSecondsUpperBound(t *testing.T) {
	body := func(v string) string {
		return `{"applications": [{"name": "a", "import_path": "m:app", "deployments": [{"name": "D", "graceful_shutdown_timeout_s": ` + v + `}]}]}`
	}
	p, err := Parse([]byte(body("9223372036")))
	if err != nil {
		t.Fatalf("largest seconds value rejected: %v", err)
	}
	if d := Resolve(p.Schema.Applications[0].Deployments[0], nil, nil); d.GracefulShutdownTimeout <= 0 {
		t.Errorf("graceful_shutdown_timeout = %v, want positive", d.GracefulShutdownTimeout)
	}
	_, err = Parse([]byte(body("1e300")))
	if err == nil || !strings.Contains(err.Error(), "applications[0].deployments[0].graceful_shutdown_timeout_s") || !strings.Contains(err.Error(), "must be at most 9223372036 seconds") {
		t.Errorf("Parse(1e300) error = %v, want one naming the field and the bound", err)
	}
}
