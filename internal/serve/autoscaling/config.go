// Package autoscaling is Ray Serve's default replica autoscaling policy
// (https://docs.ray.io/en/latest/serve/autoscaling-guide.html), as pure
// functions of an injected time: the resolved autoscaling_config, the
// look-back window of request metrics, and the decision that turns the
// aggregated load into a target replica count with Ray's factors, bounds and
// delays. The Serve controller feeds it and applies what it decides.
package autoscaling

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Aggregation is aggregation_function: how one caller's samples in the
// look-back window become one number.
type Aggregation string

// The aggregation functions Ray accepts.
const (
	AggregateMean Aggregation = "mean"
	AggregateMax  Aggregation = "max"
	AggregateMin  Aggregation = "min"
)

// Ray Serve's autoscaling_config defaults.
const (
	DefaultMinReplicas           = 1
	DefaultMaxReplicas           = 1
	DefaultTargetOngoingRequests = 2.0
	DefaultMetricsInterval       = 10 * time.Second
	DefaultLookBackPeriod        = 30 * time.Second
	DefaultUpscaleDelay          = 30 * time.Second
	DefaultDownscaleDelay        = 600 * time.Second
	DefaultSmoothingFactor       = 1.0
	// AutoMaxReplicas is max_replicas for num_replicas "auto".
	AutoMaxReplicas = 100
)

// Config is a resolved autoscaling_config: every field has its effective
// value, the deprecated ones folded into their successors.
type Config struct {
	MinReplicas int
	MaxReplicas int
	// InitialReplicas is nil when unset (the deployment starts at MinReplicas).
	InitialReplicas       *int
	TargetOngoingRequests float64
	MetricsInterval       time.Duration
	LookBackPeriod        time.Duration
	UpscaleDelay          time.Duration
	DownscaleDelay        time.Duration
	// DownscaleToZeroDelay applies to the step from one replica to zero.
	DownscaleToZeroDelay time.Duration
	UpscalingFactor      float64
	DownscalingFactor    float64
	Aggregation          Aggregation
}

// FieldError is an autoscaling_config field with a bad value.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Errors are every field error of one config.
type Errors []*FieldError

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

var knownFields = []string{
	"min_replicas", "max_replicas", "initial_replicas", "target_ongoing_requests",
	"target_num_ongoing_requests_per_replica", "metrics_interval_s", "look_back_period_s",
	"smoothing_factor", "upscale_smoothing_factor", "downscale_smoothing_factor",
	"upscaling_factor", "downscaling_factor", "upscale_delay_s", "downscale_delay_s",
	"downscale_to_zero_delay_s", "aggregation_function", "policy",
}

// AutoConfig is what num_replicas "auto" means: Ray's defaults with
// max_replicas 100.
func AutoConfig() Config {
	c, _ := Parse("autoscaling_config", map[string]any{"min_replicas": 1, "max_replicas": AutoMaxReplicas})
	return c
}

// Parse resolves an autoscaling_config object (as decoded from JSON). path
// prefixes the field names in errors (e.g. "applications[0].deployments[1].autoscaling_config").
func Parse(path string, m map[string]any) (Config, error) {
	p := parser{path: path, m: m}
	known := map[string]bool{}
	for _, k := range knownFields {
		known[k] = true
	}
	var extra []string
	for k := range m {
		if !known[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		p.fail(k, "unknown field")
	}
	c := Config{Aggregation: AggregateMean}
	c.MinReplicas = p.count("min_replicas", DefaultMinReplicas)
	maxDefault := max(DefaultMaxReplicas, c.MinReplicas)
	c.MaxReplicas = p.count("max_replicas", maxDefault)
	if _, set := p.get("max_replicas"); set && c.MaxReplicas < 1 {
		p.fail("max_replicas", fmt.Sprintf("must be greater than 0, got %d", c.MaxReplicas))
	}
	if c.MinReplicas > c.MaxReplicas {
		p.fail("max_replicas", fmt.Sprintf("must be greater than or equal to min_replicas (%d), got %d", c.MinReplicas, c.MaxReplicas))
	}
	if _, set := p.get("initial_replicas"); set {
		n := p.count("initial_replicas", 0)
		if n < c.MinReplicas || n > c.MaxReplicas {
			p.fail("initial_replicas", fmt.Sprintf("must be between min_replicas (%d) and max_replicas (%d), got %d", c.MinReplicas, c.MaxReplicas, n))
		}
		c.InitialReplicas = &n
	}
	// target_num_ongoing_requests_per_replica is the older name.
	c.TargetOngoingRequests = p.positive("target_num_ongoing_requests_per_replica", DefaultTargetOngoingRequests)
	c.TargetOngoingRequests = p.positive("target_ongoing_requests", c.TargetOngoingRequests)
	c.MetricsInterval = p.duration("metrics_interval_s", DefaultMetricsInterval, true)
	c.LookBackPeriod = p.duration("look_back_period_s", DefaultLookBackPeriod, true)
	c.UpscaleDelay = p.duration("upscale_delay_s", DefaultUpscaleDelay, false)
	c.DownscaleDelay = p.duration("downscale_delay_s", DefaultDownscaleDelay, false)
	c.DownscaleToZeroDelay = p.duration("downscale_to_zero_delay_s", c.DownscaleDelay, false)
	// Factor resolution: the factor, else its deprecated smoothing variant,
	// else the deprecated smoothing_factor.
	smoothing := p.positive("smoothing_factor", DefaultSmoothingFactor)
	c.UpscalingFactor = p.positive("upscaling_factor", p.positive("upscale_smoothing_factor", smoothing))
	c.DownscalingFactor = p.positive("downscaling_factor", p.positive("downscale_smoothing_factor", smoothing))
	if x, set := p.get("aggregation_function"); set {
		s, ok := x.(string)
		switch {
		case !ok:
			p.fail("aggregation_function", fmt.Sprintf("must be a string, got %T", x))
		case s == string(AggregateMean), s == string(AggregateMax), s == string(AggregateMin):
			c.Aggregation = Aggregation(s)
		default:
			p.fail("aggregation_function", fmt.Sprintf("must be 'mean', 'max' or 'min', got %q", s))
		}
	}
	if x, set := p.get("policy"); set {
		// Only the default policy runs here; a custom one is refused rather
		// than silently replaced.
		if pm, ok := x.(map[string]any); !ok || len(pm) > 0 && !isDefaultPolicy(pm) {
			p.fail("policy", "custom autoscaling policies are not supported; only ray.serve.autoscaling_policy:default_autoscaling_policy runs")
		}
	}
	if len(p.errs) > 0 {
		return Config{}, p.errs
	}
	return c, nil
}

func isDefaultPolicy(m map[string]any) bool {
	for k, v := range m {
		if k != "policy_function" {
			return false
		}
		s, _ := v.(string)
		if s != "ray.serve.autoscaling_policy:default_autoscaling_policy" && s != "ray.serve.autoscaling_policy.default_autoscaling_policy" {
			return false
		}
	}
	return true
}

type parser struct {
	path string
	m    map[string]any
	errs Errors
}

func (p *parser) fail(field, reason string) {
	p.errs = append(p.errs, &FieldError{Field: p.path + "." + field, Reason: reason})
}

func (p *parser) get(k string) (any, bool) {
	x, ok := p.m[k]
	return x, ok && x != nil
}

func number(x any) (float64, bool) {
	switch n := x.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func (p *parser) count(k string, def int) int {
	x, set := p.get(k)
	if !set {
		return def
	}
	f, ok := number(x)
	if !ok || f != math.Trunc(f) || math.IsInf(f, 0) {
		p.fail(k, fmt.Sprintf("must be an integer, got %v", x))
		return def
	}
	if f < 0 {
		p.fail(k, fmt.Sprintf("must be greater than or equal to 0, got %d", int(f)))
		return def
	}
	return int(f)
}

func (p *parser) positive(k string, def float64) float64 {
	x, set := p.get(k)
	if !set {
		return def
	}
	f, ok := number(x)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		p.fail(k, fmt.Sprintf("must be a number, got %v", x))
		return def
	}
	if f <= 0 {
		p.fail(k, fmt.Sprintf("must be greater than 0, got %v", f))
		return def
	}
	return f
}

func (p *parser) duration(k string, def time.Duration, strictlyPositive bool) time.Duration {
	x, set := p.get(k)
	if !set {
		return def
	}
	f, ok := number(x)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		p.fail(k, fmt.Sprintf("must be a number of seconds, got %v", x))
		return def
	}
	if f < 0 || strictlyPositive && f == 0 {
		bound := "greater than or equal to 0"
		if strictlyPositive {
			bound = "greater than 0"
		}
		p.fail(k, fmt.Sprintf("must be %s, got %v", bound, f))
		return def
	}
	return time.Duration(f * float64(time.Second))
}

// Reported is an autoscaling_config as GET's deployment_config shows it:
// every field, unset ones with Ray's defaults (null where Ray's default is
// null), set ones as given.
func Reported(m map[string]any) map[string]any {
	out := map[string]any{
		"min_replicas": DefaultMinReplicas, "initial_replicas": nil, "max_replicas": DefaultMaxReplicas,
		"target_ongoing_requests": DefaultTargetOngoingRequests,
		"metrics_interval_s":      DefaultMetricsInterval.Seconds(), "look_back_period_s": DefaultLookBackPeriod.Seconds(),
		"smoothing_factor": DefaultSmoothingFactor, "upscale_smoothing_factor": nil, "downscale_smoothing_factor": nil,
		"upscaling_factor": nil, "downscaling_factor": nil,
		"upscale_delay_s": DefaultUpscaleDelay.Seconds(), "downscale_delay_s": DefaultDownscaleDelay.Seconds(),
		"downscale_to_zero_delay_s": nil, "aggregation_function": string(AggregateMean),
	}
	if minR, ok := m["min_replicas"]; ok && minR != nil {
		if _, set := m["max_replicas"]; !set {
			if f, ok := number(minR); ok && f > DefaultMaxReplicas {
				out["max_replicas"] = minR
			}
		}
	}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// ScaleByCapacity applies target_capacity (percent) to a replica count:
// round half up, at least one unless the capacity or the count is zero.
func ScaleByCapacity(n int, targetCapacity *float64) int {
	if targetCapacity == nil || n == 0 {
		return n
	}
	if *targetCapacity == 0 {
		return 0
	}
	return max(int(math.Floor(float64(n)**targetCapacity/100+0.5)), 1)
}

// Bounds are min_replicas and max_replicas scaled by target_capacity.
func (c Config) Bounds(targetCapacity *float64) (lo, hi int) {
	return ScaleByCapacity(c.MinReplicas, targetCapacity), ScaleByCapacity(c.MaxReplicas, targetCapacity)
}

// Initial is the replica count a new deployment starts with:
// initial_replicas, else min_replicas, scaled by target_capacity.
func (c Config) Initial(targetCapacity *float64) int {
	n := c.MinReplicas
	if c.InitialReplicas != nil {
		n = *c.InitialReplicas
	}
	return ScaleByCapacity(n, targetCapacity)
}
