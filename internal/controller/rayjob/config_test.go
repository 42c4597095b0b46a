package rayjob

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

func TestConfigWithDefaults(t *testing.T) {
	want := DefaultConfig()
	want.Resources = resources.Options{}
	if diff := cmp.Diff(want, Config{}.withDefaults()); diff != "" {
		t.Fatalf("Config{}.withDefaults() (-want,+got):\n%s", diff)
	}
	c := DefaultConfig()
	c.StatusCheckTimeout, c.HeadPodRestartThreshold = time.Second, 7
	if got := c.withDefaults(); got.StatusCheckTimeout != time.Second || got.HeadPodRestartThreshold != 7 {
		t.Fatalf("withDefaults changed set fields: %+v", got)
	}
}
