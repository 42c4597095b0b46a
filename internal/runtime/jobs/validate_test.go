package jobs

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSubmitRequestRejectsBadBodies(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField string
	}{
		{"not json", `{`, "JSON"},
		{"not an object", `[1]`, "JSON object"},
		{"missing entrypoint", `{"submission_id":"a"}`, "'entrypoint'"},
		{"entrypoint not a string", `{"entrypoint": 3}`, "entrypoint must be a string, got <class 'int'>"},
		{"empty entrypoint", `{"entrypoint": " "}`, "entrypoint"},
		{"unknown key", `{"entrypoint":"x","bogus":1}`, "'bogus'"},
		{"submission_id type", `{"entrypoint":"x","submission_id":1.5}`, "submission_id must be a string if provided, got <class 'float'>"},
		{"submission_id path", `{"entrypoint":"x","submission_id":"../x"}`, "submission_id"},
		{"job_id type", `{"entrypoint":"x","job_id":[]}`, "job_id"},
		{"runtime_env type", `{"entrypoint":"x","runtime_env":"a"}`, "runtime_env must be a dict"},
		{"working_dir type", `{"entrypoint":"x","runtime_env":{"working_dir":1}}`, "runtime_env.working_dir"},
		{"env_vars type", `{"entrypoint":"x","runtime_env":{"env_vars":[]}}`, "runtime_env.env_vars"},
		{"env_vars value", `{"entrypoint":"x","runtime_env":{"env_vars":{"A":1}}}`, "runtime_env.env_vars"},
		{"pip type", `{"entrypoint":"x","runtime_env":{"pip":3}}`, "runtime_env.pip must be a list of packages or a dict"},
		{"pip entry", `{"entrypoint":"x","runtime_env":{"pip":["a",1]}}`, "runtime_env.pip must be a list of strings"},
		{"conda", `{"entrypoint":"x","runtime_env":{"conda":"env"}}`, "runtime_env.conda is not supported"},
		{"config", `{"entrypoint":"x","runtime_env":{"config":{"setup_timeout_seconds":60}}}`, "runtime_env.config is not supported"},
		{"unknown field", `{"entrypoint":"x","runtime_env":{"x":2}}`, "unknown field 'x'"},
		{"pip_version", `{"entrypoint":"x","runtime_env":{"pip":{"packages":["a"],"pip_version":"==22.0"}}}`, "runtime_env.pip.pip_version (==22.0) is not supported"},
		{"metadata type", `{"entrypoint":"x","metadata":[]}`, "metadata must be a dict"},
		{"metadata value", `{"entrypoint":"x","metadata":{"a":1}}`, "metadata values must be strings"},
		{"cpus type", `{"entrypoint":"x","entrypoint_num_cpus":"1"}`, "entrypoint_num_cpus must be a number"},
		{"cpus negative", `{"entrypoint":"x","entrypoint_num_cpus":-1}`, "entrypoint_num_cpus must be non-negative"},
		{"gpus type", `{"entrypoint":"x","entrypoint_num_gpus":true}`, "entrypoint_num_gpus must be a number"},
		{"memory float", `{"entrypoint":"x","entrypoint_memory":1.5}`, "entrypoint_memory must be an integer"},
		{"memory negative", `{"entrypoint":"x","entrypoint_memory":-5}`, "entrypoint_memory"},
		{"resources type", `{"entrypoint":"x","entrypoint_resources":[]}`, "entrypoint_resources must be a dict"},
		{"resources value", `{"entrypoint":"x","entrypoint_resources":{"a":"1"}}`, "entrypoint_resources values"},
		{"resources CPU", `{"entrypoint":"x","entrypoint_resources":{"CPU":1}}`, "entrypoint_resources cannot contain 'CPU'"},
		{"label selector value", `{"entrypoint":"x","entrypoint_label_selector":{"a":1}}`, "entrypoint_label_selector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSubmitRequest([]byte(tt.body))
			var bad *BadRequestError
			if !errors.As(err, &bad) {
				t.Fatalf("err = %v, want a BadRequestError", err)
			}
			if !strings.Contains(bad.Msg, tt.wantField) {
				t.Errorf("message %q does not name %q", bad.Msg, tt.wantField)
			}
		})
	}
}

func TestParseSubmitRequestAccepts(t *testing.T) {
	req, err := ParseSubmitRequest([]byte(`{
		"entrypoint": "echo hi", "job_id": "legacy", "runtime_env": {"env_vars": {"A": "b"}, "pip": null, "excludes": ["*.log"]},
		"metadata": {"k": "v"}, "entrypoint_num_cpus": 1, "entrypoint_num_gpus": 0.5, "entrypoint_memory": 1024,
		"entrypoint_resources": {"TPU": 4}, "entrypoint_label_selector": {"zone": "a"}, "retry_policy": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if req.SubmissionID != "legacy" {
		t.Errorf("submission id = %q, want the job_id alias", req.SubmissionID)
	}
	if req.EntrypointNumCPUs != 1 || req.EntrypointNumGPUs != 0.5 || req.EntrypointMemory != 1024 || req.EntrypointResources["TPU"] != 4 {
		t.Errorf("resources not parsed: %+v", req)
	}
	if ex, _ := req.RuntimeEnv["excludes"].([]any); len(ex) != 1 || req.Metadata["k"] != "v" || req.EntrypointLabelSelector["zone"] != "a" {
		t.Errorf("maps not parsed: %+v", req)
	}
}

func TestNewSubmissionID(t *testing.T) {
	id := NewSubmissionID()
	rest, ok := strings.CutPrefix(id, "raysubmit_")
	if !ok || len(rest) != 16 || strings.ContainsAny(rest, "IloO0") {
		t.Errorf("id %q is not in Ray's format", id)
	}
}
