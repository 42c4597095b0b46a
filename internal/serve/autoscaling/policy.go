package autoscaling

import (
	"fmt"
	"math"
	"time"
)

// Input is what one decision looks at.
type Input struct {
	Now time.Time
	// Target is the deployment's current target replica count.
	Target int
	// Running counts its replicas that serve.
	Running int
	// Reading is the window's aggregate of requests in flight and queued.
	Reading        Reading
	TargetCapacity *float64
}

// State is what a deployment's policy carries between decisions: which way
// it has wanted to scale, and since when. The zero value is a fresh start.
type State struct {
	direction int
	since     time.Time
}

// Decision is the policy's answer.
type Decision struct {
	// Target is the new target; equal to Input.Target when nothing changes.
	Target int
	// Desired is what the load asks for right now, before any delay.
	Desired int
	// Reason says why Target changed ("" when it did not).
	Reason string
}

// floatSlack absorbs float error in ceilings (2.0000000001 must not
// become 3).
const floatSlack = 1e-9

func ceil(x float64) int { return int(math.Ceil(x - floatSlack)) }

// Desired is the replica count the load asks for, given the replicas that
// run, with the scaling factors applied and clamped to the bounds.
func Desired(c Config, total float64, running int, targetCapacity *float64) int {
	lo, hi := c.Bounds(targetCapacity)
	if running == 0 {
		return clamp(ceil(total/c.TargetOngoingRequests), lo, hi)
	}
	// The error ratio is the load per replica over the target; a factor
	// shrinks (or grows) its distance from 1.
	ratio := total / (c.TargetOngoingRequests * float64(running))
	factor := c.DownscalingFactor
	if ratio >= 1 {
		factor = c.UpscalingFactor
	}
	desired := ceil(float64(running) * (1 + (ratio-1)*factor))
	// A small downscaling factor must not stall above what the load needs.
	if ceil(float64(running)*ratio) < running && desired == running {
		desired--
	}
	return clamp(desired, lo, hi)
}

func clamp(n, lo, hi int) int { return max(lo, min(n, hi)) }

// Decide is Ray Serve's default policy: the load's desired count becomes
// the target once it has pointed the same way for upscale_delay_s (up) or
// downscale_delay_s (down; downscale_to_zero_delay_s for one replica to
// zero). With no replica running, queued requests scale up at once (cold
// start). Delayed or missing metrics never scale down: a gap in reports is
// not an idle deployment. The target always stays within the bounds.
func Decide(c Config, in Input, st *State) Decision {
	lo, hi := c.Bounds(in.TargetCapacity)
	cur := in.Target
	total := in.Reading.Total
	if bounded := clamp(cur, lo, hi); bounded != cur {
		// New bounds (a config or target_capacity change) apply at once.
		*st = State{}
		return Decision{Target: bounded, Desired: bounded, Reason: fmt.Sprintf("target %d is outside the bounds [%d, %d]", cur, lo, hi)}
	}
	if in.Running == 0 {
		*st = State{}
		if total > 0 && cur == 0 {
			n := clamp(max(ceil(c.UpscalingFactor), 1), lo, hi)
			if n > cur {
				return Decision{Target: n, Desired: n, Reason: fmt.Sprintf("cold start: %.3g requests wait and no replica runs", total)}
			}
		}
		// Replicas are starting; nothing runs to measure against yet.
		return Decision{Target: cur, Desired: cur}
	}
	desired := Desired(c, total, in.Running, in.TargetCapacity)
	switch {
	case desired > cur:
		if st.direction != 1 {
			*st = State{direction: 1, since: in.Now}
		}
		if in.Now.Sub(st.since) >= c.UpscaleDelay {
			*st = State{}
			return Decision{Target: desired, Desired: desired,
				Reason: fmt.Sprintf("%.3g ongoing and queued requests over %d running replicas exceed the target of %.3g per replica", total, in.Running, c.TargetOngoingRequests)}
		}
	case desired < cur && in.Reading.Health != MetricsHealthy:
		*st = State{}
	case desired < cur:
		if st.direction != -1 {
			*st = State{direction: -1, since: in.Now}
		}
		delay := c.DownscaleDelay
		toZero := cur == 1 && desired == 0
		if toZero {
			delay = c.DownscaleToZeroDelay
		}
		if in.Now.Sub(st.since) >= delay {
			*st = State{}
			next := desired
			if !toZero {
				// Zero is reached only from one replica, after its own delay.
				next = max(desired, min(1, cur))
			}
			return Decision{Target: next, Desired: desired,
				Reason: fmt.Sprintf("%.3g ongoing and queued requests over %d running replicas are below the target of %.3g per replica", total, in.Running, c.TargetOngoingRequests)}
		}
	default:
		*st = State{}
	}
	return Decision{Target: cur, Desired: desired}
}

// Direction is the way the policy currently leans: 1 up, -1 down, 0 stable.
func (s *State) Direction() int { return s.direction }
