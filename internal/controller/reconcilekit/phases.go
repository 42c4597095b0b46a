package reconcilekit

import (
	"context"
	"errors"
	"fmt"
)

// Phase is one named step of a reconcile over the scope S, which carries the object, what was
// observed and the facts the phases record. A phase that returns stop ends the list early.
type Phase[S any] struct {
	Name string
	Run  func(ctx context.Context, s S) (stop bool, err error)
}

// Step makes a Phase of a step that never ends the list early.
func Step[S any](name string, run func(ctx context.Context, s S) error) Phase[S] {
	return Phase[S]{Name: name, Run: func(ctx context.Context, s S) (bool, error) { return false, run(ctx, s) }}
}

// RunPhases runs phases in order until one stops or fails, then runs every final phase whatever
// happened. Errors are wrapped with the phase's name and joined.
func RunPhases[S any](ctx context.Context, s S, phases, final []Phase[S]) error {
	var errs []error
	for _, p := range phases {
		stop, err := p.Run(ctx, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
			break
		}
		if stop {
			break
		}
	}
	for _, p := range final {
		if _, err := p.Run(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p.Name, err))
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
