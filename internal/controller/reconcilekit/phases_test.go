package reconcilekit_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

// trace is the scope of the phase tests: the names of the phases that ran.
type trace struct{ ran []string }

func phase(name string, stop bool, err error) reconcilekit.Phase[*trace] {
	return reconcilekit.Phase[*trace]{Name: name, Run: func(_ context.Context, s *trace) (bool, error) {
		s.ran = append(s.ran, name)
		return stop, err
	}}
}

func TestRunPhases(t *testing.T) {
	errA, errGC := errors.New("a failed"), errors.New("gc failed")
	cases := map[string]struct {
		phases, final []reconcilekit.Phase[*trace]
		wantRan       []string
		wantErr       string
		wantIs        []error
	}{
		"all run": {
			phases:  []reconcilekit.Phase[*trace]{phase("a", false, nil), phase("b", false, nil)},
			final:   []reconcilekit.Phase[*trace]{phase("gc", false, nil)},
			wantRan: []string{"a", "b", "gc"},
		},
		"stop ends the list, final still runs": {
			phases:  []reconcilekit.Phase[*trace]{phase("a", true, nil), phase("b", false, nil)},
			final:   []reconcilekit.Phase[*trace]{phase("gc", false, nil)},
			wantRan: []string{"a", "gc"},
		},
		"an error ends the list and is wrapped with the phase name": {
			phases:  []reconcilekit.Phase[*trace]{phase("a", false, errA), phase("b", false, nil)},
			wantRan: []string{"a"},
			wantErr: "a: a failed",
			wantIs:  []error{errA},
		},
		"errors of the list and of the final phases are joined": {
			phases:  []reconcilekit.Phase[*trace]{phase("a", false, errA)},
			final:   []reconcilekit.Phase[*trace]{phase("gc", true, errGC), phase("gc2", false, nil)},
			wantRan: []string{"a", "gc", "gc2"},
			wantErr: "a: a failed\ngc: gc failed",
			wantIs:  []error{errA, errGC},
		},
		"step never stops": {
			phases: []reconcilekit.Phase[*trace]{
				reconcilekit.Step("s", func(_ context.Context, s *trace) error { s.ran = append(s.ran, "s"); return nil }),
				phase("b", false, nil),
			},
			wantRan: []string{"s", "b"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			s := &trace{}
			err := reconcilekit.RunPhases(context.Background(), s, tc.phases, tc.final)
			if !slices.Equal(s.ran, tc.wantRan) {
				t.Errorf("ran %v, want %v", s.ran, tc.wantRan)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr):
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			for _, target := range tc.wantIs {
				if !errors.Is(err, target) {
					t.Errorf("error %v does not wrap %v", err, target)
				}
			}
		})
	}
}
