package schedulers_test

import (
	"strings"
	"testing"

	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/schedulers"
)

func TestByName(t *testing.T) {
	for _, name := range []string{"", "default"} {
		if s, err := schedulers.ByName(name, schedulers.Settings{}); s != nil || err != nil {
			t.Errorf("ByName(%q) = %v, %v; want no scheduler", name, s, err)
		}
	}
	for _, name := range schedulers.Names() {
		s, err := schedulers.ByName(name, schedulers.Settings{})
		if err != nil || s == nil || s.Name() != name {
			t.Errorf("ByName(%q) = %v, %v", name, s, err)
		}
	}
	_, err := schedulers.ByName("slurm", schedulers.Settings{})
	if err == nil || !strings.Contains(err.Error(), `"slurm"`) || !strings.Contains(err.Error(), "volcano, yunikorn, kai-scheduler, scheduler-plugins") {
		t.Errorf("ByName(slurm) error = %v", err)
	}
}
