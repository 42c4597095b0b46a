package reconcilekit

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or returns the collector of the same type already
// registered with the same descriptors: a second reconciler in one process (tests start several
// managers) then feeds the same series instead of failing.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var zero C
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		return zero, err
	}
	existing, ok := are.ExistingCollector.(C)
	if !ok {
		return zero, fmt.Errorf("registering %T: a %T is registered with the same descriptors", c, are.ExistingCollector)
	}
	return existing, nil
}
