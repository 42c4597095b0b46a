package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/rayk8s/rayk8s/internal/dashboard"
	"github.com/rayk8s/rayk8s/internal/runtime/pipenv"
)

// BadRequestError is a submit body Ray would reject with 400; the message
// names the offending field the way Ray's Python validation does.
type BadRequestError struct{ Msg string }

func (e *BadRequestError) Error() string { return e.Msg }

func badRequest(format string, args ...any) error {
	return &BadRequestError{Msg: fmt.Sprintf(format, args...)}
}

var submitFields = []string{
	"entrypoint", "submission_id", "job_id", "runtime_env", "metadata",
	"entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory",
	"entrypoint_resources", "entrypoint_label_selector",
}

// ParseSubmitRequest validates a POST /api/jobs/ body. Like Ray it drops
// keys whose value is null first, so newer clients work against it.
func ParseSubmitRequest(body []byte) (*dashboard.JobSubmitRequest, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, badRequest("Failed to parse the request body as JSON: %v", err)
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, badRequest("The request body must be a JSON object, got %s", pyType(raw))
	}
	keys := make([]string, 0, len(obj))
	for k, v := range obj {
		if v == nil {
			delete(obj, k)
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(submitFields, k) {
			return nil, badRequest("JobSubmitRequest.__init__() got an unexpected keyword argument '%s'", k)
		}
	}
	req := &dashboard.JobSubmitRequest{}
	ep, ok := obj["entrypoint"]
	if !ok {
		return nil, badRequest("JobSubmitRequest.__init__() missing 1 required positional argument: 'entrypoint'")
	}
	if req.Entrypoint, ok = ep.(string); !ok {
		return nil, badRequest("entrypoint must be a string, got %s", pyType(ep))
	}
	if strings.TrimSpace(req.Entrypoint) == "" {
		return nil, badRequest("entrypoint must be a non-empty string")
	}
	var err error
	if req.SubmissionID, err = optString(obj, "submission_id"); err != nil {
		return nil, err
	}
	if req.JobID, err = optString(obj, "job_id"); err != nil {
		return nil, err
	}
	if v, ok := obj["runtime_env"]; ok {
		if req.RuntimeEnv, err = parseRuntimeEnv(v); err != nil {
			return nil, err
		}
	}
	if req.Metadata, err = optStringMap(obj, "metadata"); err != nil {
		return nil, err
	}
	if req.EntrypointLabelSelector, err = optStringMap(obj, "entrypoint_label_selector"); err != nil {
		return nil, err
	}
	if req.EntrypointNumCPUs, err = optNumber(obj, "entrypoint_num_cpus"); err != nil {
		return nil, err
	}
	if req.EntrypointNumGPUs, err = optNumber(obj, "entrypoint_num_gpus"); err != nil {
		return nil, err
	}
	if v, ok := obj["entrypoint_memory"]; ok {
		n, isNum := v.(json.Number)
		i, convErr := n.Int64()
		if !isNum || convErr != nil {
			return nil, badRequest("entrypoint_memory must be an integer, got %s", pyType(v))
		}
		if i < 0 {
			return nil, badRequest("entrypoint_memory must be non-negative, got %d", i)
		}
		req.EntrypointMemory = i
	}
	if v, ok := obj["entrypoint_resources"]; ok {
		m, isMap := v.(map[string]any)
		if !isMap {
			return nil, badRequest("entrypoint_resources must be a dict, got %s", pyType(v))
		}
		req.EntrypointResources = map[string]float64{}
		for name, rv := range m {
			f, ok := number(rv)
			if !ok {
				return nil, badRequest("entrypoint_resources values must be numbers, got %s for '%s'", pyType(rv), name)
			}
			if f < 0 {
				return nil, badRequest("entrypoint_resources values must be non-negative, got %v for '%s'", f, name)
			}
			if name == "CPU" || name == "GPU" || name == "memory" {
				return nil, badRequest("entrypoint_resources cannot contain '%s'; use entrypoint_num_cpus, entrypoint_num_gpus or entrypoint_memory", name)
			}
			req.EntrypointResources[name] = f
		}
	}
	if req.SubmissionID == "" && req.JobID != "" {
		req.SubmissionID = req.JobID
	}
	if err := validateSubmissionID(req.SubmissionID); err != nil {
		return nil, err
	}
	return req, nil
}

// validateSubmissionID keeps ids usable in log file names.
func validateSubmissionID(id string) error {
	if id == "" {
		return nil
	}
	if strings.ContainsAny(id, "/\\\x00") || id == "." || id == ".." {
		return badRequest("submission_id must not contain path separators, got '%s'", id)
	}
	return nil
}

// checkRuntimeEnvField refuses a runtime_env field a job's processes would not get: Ray's other
// fields by name, anything else as unknown. excludes only shapes the working_dir upload, which
// the client does.
func checkRuntimeEnvField(k string) error {
	switch k {
	case "working_dir", "env_vars", "pip", "excludes":
		return nil
	case "py_modules", "py_executable", "uv", "conda", "container", "image_uri", "nsight", "config",
		"java_jars", "worker_process_setup_hook", "mpi", "rocprof_sys":
		return badRequest("runtime_env.%s is not supported by this Ray runtime; a job's runtime_env may set working_dir, env_vars and pip", k)
	}
	return badRequest("runtime_env has the unknown field '%s'", k)
}

func parseRuntimeEnv(v any) (map[string]any, error) {
	env, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("runtime_env must be a dict, got %s", pyType(v))
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if err := checkRuntimeEnvField(k); err != nil {
			return nil, err
		}
	}
	if wd, ok := env["working_dir"]; ok && wd != nil {
		if _, isStr := wd.(string); !isStr {
			return nil, badRequest("runtime_env.working_dir must be a string, got %s", pyType(wd))
		}
	}
	if ev, ok := env["env_vars"]; ok && ev != nil {
		m, isMap := ev.(map[string]any)
		if !isMap {
			return nil, badRequest("runtime_env.env_vars must be a dict, got %s", pyType(ev))
		}
		for k, val := range m {
			if _, isStr := val.(string); !isStr {
				return nil, badRequest("runtime_env.env_vars values must be strings, got %s for '%s'", pyType(val), k)
			}
		}
	}
	env = normalizeNumbers(env).(map[string]any)
	if _, err := pipenv.Parse(env["pip"]); err != nil {
		return nil, badRequest("%v", err)
	}
	return env, nil
}

// normalizeNumbers turns json.Number back into float64/int64 so the value
// re-encodes as plain JSON.
func normalizeNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, e := range t {
			t[k] = normalizeNumbers(e)
		}
		return t
	case []any:
		for i, e := range t {
			t[i] = normalizeNumbers(e)
		}
		return t
	}
	return v
}

func optString(obj map[string]any, key string) (string, error) {
	v, ok := obj[key]
	if !ok {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", badRequest("%s must be a string if provided, got %s", key, pyType(v))
	}
	return s, nil
}

func optStringMap(obj map[string]any, key string) (map[string]string, error) {
	v, ok := obj[key]
	if !ok {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("%s must be a dict, got %s", key, pyType(v))
	}
	out := make(map[string]string, len(m))
	for k, e := range m {
		s, ok := e.(string)
		if !ok {
			return nil, badRequest("%s values must be strings, got %s for '%s'", key, pyType(e), k)
		}
		out[k] = s
	}
	return out, nil
}

func optNumber(obj map[string]any, key string) (float64, error) {
	v, ok := obj[key]
	if !ok {
		return 0, nil
	}
	f, ok := number(v)
	if !ok {
		return 0, badRequest("%s must be a number, got %s", key, pyType(v))
	}
	if f < 0 {
		return 0, badRequest("%s must be non-negative, got %v", key, f)
	}
	return f, nil
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// pyType names a decoded JSON value's type as Python would print it.
func pyType(v any) string {
	switch t := v.(type) {
	case string:
		return "<class 'str'>"
	case bool:
		return "<class 'bool'>"
	case json.Number:
		if strings.ContainsAny(t.String(), ".eE") {
			return "<class 'float'>"
		}
		return "<class 'int'>"
	case []any:
		return "<class 'list'>"
	case map[string]any:
		return "<class 'dict'>"
	case nil:
		return "<class 'NoneType'>"
	}
	return fmt.Sprintf("<class '%T'>", v)
}
