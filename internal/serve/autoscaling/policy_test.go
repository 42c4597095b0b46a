package autoscaling

import (
	"strings"
	"testing"
	"time"
)

func cfg(t *testing.T, m map[string]any) Config {
	t.Helper()
	c, err := Parse("autoscaling_config", m)
	if err != nil {
		t.Fatalf("Parse(%v): %v", m, err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// step is one decision of a scenario: at offset `at`, with `running`
// replicas and `total` requests in the window (healthy unless health is
// set), the target must become `want`.
type step struct {
	at      time.Duration
	running int // -1: equal to the current target
	total   float64
	health  MetricsHealth
	want    int
}

func TestDecide(t *testing.T) {
	base := map[string]any{"min_replicas": 1, "max_replicas": 10, "target_ongoing_requests": 2, "upscale_delay_s": 30, "downscale_delay_s": 600}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	s := time.Second
	cases := []struct {
		name     string
		config   map[string]any
		capacity *float64
		start    int
		steps    []step
	}{
		{"steady load at the target keeps the count", base, nil, 3, []step{
			{0, -1, 6, "", 3}, {100 * s, -1, 6, "", 3}, {1000 * s, -1, 6, "", 3},
		}},
		{"a step up waits upscale_delay_s, then goes to ceil(total/target)", base, nil, 1, []step{
			{0, -1, 7, "", 1}, {29 * s, -1, 7, "", 1}, {30 * s, -1, 7, "", 4},
		}},
		{"a step down waits downscale_delay_s", base, nil, 4, []step{
			{0, -1, 2, "", 4}, {599 * s, -1, 2, "", 4}, {600 * s, -1, 2, "", 1},
		}},
		{"a dip shorter than the delay resets the hysteresis", base, nil, 4, []step{
			{0, -1, 2, "", 4}, {500 * s, -1, 8, "", 4}, {501 * s, -1, 2, "", 4}, {1100 * s, -1, 2, "", 4}, {1101 * s, -1, 2, "", 1},
		}},
		{"a spike shorter than the delay does not scale up", base, nil, 2, []step{
			{0, -1, 12, "", 2}, {20 * s, -1, 4, "", 2}, {40 * s, -1, 12, "", 2}, {69 * s, -1, 12, "", 2}, {70 * s, -1, 12, "", 6},
		}},
		{"the upscale decision uses the latest desired count", base, nil, 1, []step{
			{0, -1, 4, "", 1}, {15 * s, -1, 10, "", 1}, {30 * s, -1, 10, "", 5},
		}},
		{"zero delays act at once", with(map[string]any{"upscale_delay_s": 0, "downscale_delay_s": 0}), nil, 1, []step{
			{0, -1, 20, "", 10}, {s, -1, 2, "", 1},
		}},
		{"upscaling_factor halves the step up", with(map[string]any{"upscaling_factor": 0.5, "upscale_delay_s": 0}), nil, 2, []step{
			// ratio 10/(2*2)=2.5: 2*(1+1.5*0.5)=3.5 → 4.
			{0, -1, 10, "", 4},
		}},
		{"downscaling_factor slows the step down but always makes progress", with(map[string]any{"downscaling_factor": 0.1, "downscale_delay_s": 0}), nil, 8, []step{
			// ratio 2/16: 8*(1-0.875*0.1)=7.3 → 8, forced to 7.
			{0, -1, 2, "", 7},
		}},
		{"smoothing_factor is the fallback of both factors", with(map[string]any{"smoothing_factor": 0.5, "upscale_delay_s": 0}), nil, 2, []step{
			{0, -1, 10, "", 4},
		}},
		{"upscale_smoothing_factor wins over smoothing_factor", with(map[string]any{"smoothing_factor": 0.5, "upscale_smoothing_factor": 2, "upscale_delay_s": 0}), nil, 2, []step{
			// 2*(1+1.5*2)=8.
			{0, -1, 10, "", 8},
		}},
		{"max_replicas bounds the step up", base, nil, 2, []step{
			{0, -1, 100, "", 2}, {30 * s, -1, 100, "", 10},
		}},
		{"min_replicas bounds the step down", with(map[string]any{"min_replicas": 3}), nil, 6, []step{
			{0, -1, 0, "", 6}, {600 * s, -1, 0, "", 3},
		}},
		{"to zero: first to one after downscale_delay_s, then to zero after downscale_to_zero_delay_s",
			with(map[string]any{"min_replicas": 0, "downscale_delay_s": 60, "downscale_to_zero_delay_s": 300}), nil, 3, []step{
				{0, -1, 0, "", 3}, {60 * s, -1, 0, "", 1}, {61 * s, -1, 0, "", 1}, {360 * s, -1, 0, "", 1}, {361 * s, -1, 0, "", 0},
			}},
		{"downscale_to_zero_delay_s defaults to downscale_delay_s", with(map[string]any{"min_replicas": 0, "downscale_delay_s": 60}), nil, 1, []step{
			{0, -1, 0, "", 1}, {59 * s, -1, 0, "", 1}, {60 * s, -1, 0, "", 0},
		}},
		{"cold start: a queued request with no replica scales to one at once", with(map[string]any{"min_replicas": 0}), nil, 0, []step{
			{0, 0, 0, "", 0}, {10 * s, 0, 1, "", 1},
		}},
		{"cold start honours upscaling_factor", with(map[string]any{"min_replicas": 0, "upscaling_factor": 3}), nil, 0, []step{
			{0, 0, 5, "", 3},
		}},
		{"replicas that are still starting are not measured against", base, nil, 3, []step{
			{0, 0, 0, "", 3}, {1000 * s, 0, 0, "", 3},
		}},
		{"target_capacity scales the bounds", with(map[string]any{"min_replicas": 2, "max_replicas": 10, "upscale_delay_s": 0}), ptr(50.0), 1, []step{
			// Bounds [1, 5]: the target is in range and the load asks for 50.
			{0, -1, 100, "", 5},
		}},
		{"a target outside new bounds is clamped at once", with(map[string]any{"min_replicas": 4}), nil, 2, []step{
			{0, -1, 0, "", 4},
		}},
		{"target_capacity 0 scales to zero", base, ptr(0.0), 3, []step{
			{0, -1, 6, "", 0},
		}},
		{"a metrics gap never scales down", with(map[string]any{"downscale_delay_s": 10}), nil, 4, []step{
			{0, -1, 0, MetricsDelayed, 4}, {100 * s, -1, 0, MetricsUnavailable, 4}, {200 * s, -1, 0, MetricsDelayed, 4},
			// Fresh reports start the downscale delay only now.
			{201 * s, -1, 0, "", 4}, {210 * s, -1, 0, "", 4}, {211 * s, -1, 0, "", 1},
		}},
		{"a metrics gap still lets known demand scale up", with(map[string]any{"upscale_delay_s": 0}), nil, 1, []step{
			{0, -1, 8, MetricsDelayed, 4},
		}},
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg(t, tc.config)
			var st State
			target := tc.start
			for i, sp := range tc.steps {
				running := sp.running
				if running < 0 {
					running = target
				}
				health := sp.health
				if health == "" {
					health = MetricsHealthy
				}
				d := Decide(c, Input{Now: t0.Add(sp.at), Target: target, Running: running, TargetCapacity: tc.capacity,
					Reading: Reading{Total: sp.total, Sources: 1, Health: health}}, &st)
				if d.Target != sp.want {
					t.Fatalf("step %d (t=%v, running=%d, total=%v): target %d, want %d", i, sp.at, running, sp.total, d.Target, sp.want)
				}
				if (d.Target != target) != (d.Reason != "") {
					t.Fatalf("step %d: target %d→%d with reason %q", i, target, d.Target, d.Reason)
				}
				target = d.Target
			}
		})
	}
}

func TestDesired(t *testing.T) {
	c := cfg(t, map[string]any{"min_replicas": 0, "max_replicas": 100, "target_ongoing_requests": 2})
	for _, tc := range []struct {
		total   float64
		running int
		want    int
	}{
		{0, 0, 0}, {1, 0, 1}, {6, 3, 3}, {6.2, 3, 4}, {16, 1, 8}, {3, 4, 2}, {0, 5, 0}, {2.0000000001, 1, 1},
	} {
		if got := Desired(c, tc.total, tc.running, nil); got != tc.want {
			t.Errorf("Desired(total=%v, running=%d) = %d, want %d", tc.total, tc.running, got, tc.want)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	c := cfg(t, map[string]any{})
	if c.MinReplicas != 1 || c.MaxReplicas != 1 || c.InitialReplicas != nil || c.TargetOngoingRequests != 2 ||
		c.MetricsInterval != 10*time.Second || c.LookBackPeriod != 30*time.Second || c.UpscaleDelay != 30*time.Second ||
		c.DownscaleDelay != 600*time.Second || c.DownscaleToZeroDelay != 600*time.Second ||
		c.UpscalingFactor != 1 || c.DownscalingFactor != 1 || c.Aggregation != AggregateMean {
		t.Fatalf("defaults = %+v", c)
	}
	if c := cfg(t, map[string]any{"min_replicas": 3}); c.MaxReplicas != 3 {
		t.Fatalf("max_replicas defaults to max(1, min_replicas): %d", c.MaxReplicas)
	}
	if c := cfg(t, map[string]any{"target_num_ongoing_requests_per_replica": 5}); c.TargetOngoingRequests != 5 {
		t.Fatalf("the older target name is honoured: %v", c.TargetOngoingRequests)
	}
	a := AutoConfig()
	if a.MinReplicas != 1 || a.MaxReplicas != 100 || a.TargetOngoingRequests != 2 {
		t.Fatalf("num_replicas auto = %+v", a)
	}
	if n := cfg(t, map[string]any{"min_replicas": 1, "max_replicas": 5, "initial_replicas": 3}).Initial(ptr(50.0)); n != 2 {
		t.Fatalf("initial 3 at 50%% capacity = %d, want 2", n)
	}
}

func TestParseRefusesBadFields(t *testing.T) {
	for _, tc := range []struct {
		m    map[string]any
		want string
	}{
		{map[string]any{"min_replicas": -1}, "autoscaling_config.min_replicas: must be greater than or equal to 0"},
		{map[string]any{"min_replicas": 1.5}, "autoscaling_config.min_replicas: must be an integer"},
		{map[string]any{"min_replicas": 5, "max_replicas": 2}, "autoscaling_config.max_replicas: must be greater than or equal to min_replicas (5), got 2"},
		{map[string]any{"max_replicas": 0, "min_replicas": 0}, "autoscaling_config.max_replicas: must be greater than 0"},
		{map[string]any{"max_replicas": 4, "initial_replicas": 7}, "autoscaling_config.initial_replicas: must be between min_replicas (1) and max_replicas (4), got 7"},
		{map[string]any{"target_ongoing_requests": 0}, "autoscaling_config.target_ongoing_requests: must be greater than 0"},
		{map[string]any{"upscale_delay_s": -1}, "autoscaling_config.upscale_delay_s: must be greater than or equal to 0"},
		{map[string]any{"look_back_period_s": 0}, "autoscaling_config.look_back_period_s: must be greater than 0"},
		{map[string]any{"downscaling_factor": "x"}, "autoscaling_config.downscaling_factor: must be a number"},
		{map[string]any{"aggregation_function": "median"}, "autoscaling_config.aggregation_function: must be 'mean', 'max' or 'min', got \"median\""},
		{map[string]any{"upscale_delay": 1}, "autoscaling_config.upscale_delay: unknown field"},
		{map[string]any{"policy": map[string]any{"policy_function": "my.mod:policy"}}, "autoscaling_config.policy: custom autoscaling policies are not supported"},
	} {
		_, err := Parse("autoscaling_config", tc.m)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%v) = %v, want an error containing %q", tc.m, err, tc.want)
		}
	}
	if _, err := Parse("autoscaling_config", map[string]any{"policy": map[string]any{"policy_function": "ray.serve.autoscaling_policy:default_autoscaling_policy"}}); err != nil {
		t.Fatalf("the default policy named explicitly is accepted: %v", err)
	}
}

func TestWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := time.Second
	for _, tc := range []struct {
		agg  Aggregation
		want float64
	}{{AggregateMean, 4 + 10}, {AggregateMax, 6 + 10}, {AggregateMin, 2 + 10}} {
		c := cfg(t, map[string]any{"look_back_period_s": 30, "aggregation_function": string(tc.agg)})
		w := NewWindow()
		// An old sample falls out of the look-back period.
		w.Record("node-a", Sample{At: t0, Value: 100}, Sample{At: t0.Add(40 * s), Value: 2}, Sample{At: t0.Add(50 * s), Value: 6}, Sample{At: t0.Add(45 * s), Value: 4})
		w.Record("node-b", Sample{At: t0.Add(50 * s), Value: 10})
		r := w.Read(t0.Add(50*s), c, 5*s)
		if r.Total != tc.want || r.Sources != 2 || r.Health != MetricsHealthy {
			t.Errorf("%s: reading %+v, want total %v from 2 healthy sources", tc.agg, r, tc.want)
		}
	}
	c := cfg(t, map[string]any{"look_back_period_s": 30})
	w := NewWindow()
	w.Record("node-a", Sample{At: t0, Value: 1})
	w.Record("node-b", Sample{At: t0.Add(20 * s), Value: 1})
	if r := w.Read(t0.Add(21*s), c, 5*s); r.Health != MetricsDelayed || r.Total != 2 {
		t.Fatalf("a source silent past staleAfter: %+v, want delayed with both counted", r)
	}
	w.Forget("node-a")
	if r := w.Read(t0.Add(21*s), c, 5*s); r.Health != MetricsHealthy || r.Total != 1 {
		t.Fatalf("after forgetting the silent source: %+v", r)
	}
	if r := w.Read(t0.Add(100*s), c, 5*s); r.Health != MetricsUnavailable || r.Sources != 0 {
		t.Fatalf("every sample past the look-back period: %+v, want unavailable", r)
	}
}

func TestReported(t *testing.T) {
	r := Reported(map[string]any{"min_replicas": 3, "upscale_delay_s": 5})
	if r["min_replicas"] != 3 || r["max_replicas"] != 3 || r["upscale_delay_s"] != 5 || r["downscale_delay_s"] != 600.0 ||
		r["target_ongoing_requests"] != 2.0 || r["upscaling_factor"] != nil || r["aggregation_function"] != "mean" {
		t.Fatalf("Reported = %v", r)
	}
	if _, err := Parse("autoscaling_config", r); err != nil {
		t.Fatalf("a reported config parses back: %v", err)
	}
}
