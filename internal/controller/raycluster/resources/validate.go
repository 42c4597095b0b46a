package resources

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// ValidateRayContainers checks that the head and every worker group of spec have a container at
// RayContainerIndex, the one the operator injects into. path is the path of spec (for example
// "spec" of a RayCluster, "spec.rayClusterSpec" of a RayJob).
func ValidateRayContainers(spec *rayv1.RayClusterSpec, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	const msg = "the Ray container must be containers[0]"
	if len(spec.HeadGroupSpec.Template.Spec.Containers) <= RayContainerIndex() {
		errs = append(errs, field.Required(path.Child("headGroupSpec", "template", "spec", "containers"), msg))
	}
	for i := range spec.WorkerGroupSpecs {
		if len(spec.WorkerGroupSpecs[i].Template.Spec.Containers) <= RayContainerIndex() {
			errs = append(errs, field.Required(path.Child("workerGroupSpecs").Index(i).Child("template", "spec", "containers"), msg))
		}
	}
	return errs
}
