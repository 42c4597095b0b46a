package rayservice

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rayk8s/rayk8s/internal/controller/raycluster/resources"
)

func TestConfigWithDefaults(t *testing.T) {
	want := DefaultConfig()
	want.Resources = resources.Options{}
	want.EnableZeroDowntime = false // a switch: false is a value, not a missing one
	if diff := cmp.Diff(want, Config{}.withDefaults()); diff != "" {
		t.Fatalf("Config{}.withDefaults() (-want,+got):\n%s", diff)
	}
	c := DefaultConfig()
	c.ServeMaxBackoff = time.Minute
	if got := c.withDefaults(); got.ServeMaxBackoff != time.Minute {
		t.Fatalf("withDefaults changed a set field: %+v", got)
	}
}
