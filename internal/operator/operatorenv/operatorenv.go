// Package operatorenv reads the operator's behaviour switches from environment variables (KubeRay's
// names, e.g. ENABLE_PROBES_INJECTION). Every error names the variable and what it must hold.
package operatorenv

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Bools sets *dst from each variable that is set; unset variables keep their default.
func Bools(getenv func(string) string, vars map[string]*bool) error {
	var errs []error
	for _, name := range sortedKeys(vars) {
		v := getenv(name)
		if v == "" {
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("operator environment variable %s=%q is not a boolean (true or false)", name, v))
			continue
		}
		*vars[name] = b
	}
	return errors.Join(errs...)
}

// Seconds sets *dst from each variable that is set to a positive whole number of seconds.
func Seconds(getenv func(string) string, vars map[string]*time.Duration) error {
	var errs []error
	for _, name := range sortedKeys(vars) {
		v := getenv(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("operator environment variable %s=%q must be a positive number of seconds", name, v))
			continue
		}
		*vars[name] = time.Duration(n) * time.Second
	}
	return errors.Join(errs...)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
