package gcs

import "math"

// resourceEpsilon absorbs float rounding when comparing resource amounts;
// Ray itself uses fixed point with four decimal places.
const resourceEpsilon = 1e-6

// Fits reports whether demand fits into available.
func Fits(available, demand map[string]float64) bool {
	for name, want := range demand {
		if want <= 0 {
			continue
		}
		if available[name]+resourceEpsilon < want {
			return false
		}
	}
	return true
}

// Subtract returns total minus every map in used, never below zero.
func Subtract(total map[string]float64, used ...map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(total))
	for k, v := range total {
		out[k] = v
	}
	for _, u := range used {
		for k, v := range u {
			if _, ok := out[k]; !ok {
				continue
			}
			out[k] = math.Max(0, out[k]-v)
		}
	}
	return out
}

// MatchLabels reports whether labels satisfy every key=value of selector.
func MatchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
