// Package schedulers picks the batch scheduler integration named by KubeRay's --batch-scheduler
// (or the legacy --enable-batch-scheduler, which means Volcano).
package schedulers

import (
	"fmt"
	"strings"

	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/kaischeduler"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/schedulerplugins"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/volcano"
	"github.com/rayk8s/rayk8s/internal/controller/batchscheduler/yunikorn"
)

// Default is the value that means the Kubernetes scheduler, with no integration.
const Default = "default"

// Names are the batch schedulers, in KubeRay's spelling.
func Names() []string {
	return []string{volcano.Name, yunikorn.Name, kaischeduler.Name, schedulerplugins.Name}
}

// Settings are the operator settings an integration depends on.
type Settings struct {
	// MultiHostIndexing is the RayMultiHostIndexing gate (Volcano sub-groups rely on its labels).
	MultiHostIndexing bool
}

// ByName returns the integration called name, nil for "" and Default, and an error naming the
// known ones for anything else.
func ByName(name string, s Settings) (batchscheduler.Scheduler, error) {
	switch name {
	case "", Default:
		return nil, nil
	case volcano.Name:
		return volcano.New(s.MultiHostIndexing), nil
	case yunikorn.Name:
		return yunikorn.New(), nil
	case kaischeduler.Name:
		return kaischeduler.New(), nil
	case schedulerplugins.Name:
		return schedulerplugins.New(), nil
	default:
		return nil, fmt.Errorf("unknown batch scheduler %q (KubeRay's are %s, or %s)", name, strings.Join(Names(), ", "), Default)
	}
}
