package reconcilekit_test

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

func TestApplyConfigurationLeavesOutServerFields(t *testing.T) {
	svc := service("ns", "c1")
	svc.ResourceVersion = "42"
	svc.CreationTimestamp = metav1.Now()
	ac, err := reconcilekit.ApplyConfiguration(svc, testenv.NewScheme())
	if err != nil {
		t.Fatal(err)
	}
	sac, ok := ac.(*applycorev1.ServiceApplyConfiguration)
	if !ok {
		t.Fatalf("apply configuration is a %T, want *ServiceApplyConfiguration", ac)
	}
	if sac.ResourceVersion != nil || sac.CreationTimestamp != nil || sac.Status != nil {
		t.Errorf("server-owned fields were kept: resourceVersion %v, creationTimestamp %v, status %v",
			sac.ResourceVersion, sac.CreationTimestamp, sac.Status)
	}
	if *sac.Kind != "Service" || *sac.APIVersion != "v1" || *sac.Name != "svc" || sac.Spec.Selector["ray.io/cluster"] != "c1" {
		t.Errorf("apply configuration lost the object: %+v", sac)
	}
}

func TestApplyConfigurationRefusesKindsWithoutOne(t *testing.T) {
	_, err := reconcilekit.ApplyConfiguration(&rayv1.RayCluster{}, testenv.NewScheme())
	if err == nil || !strings.Contains(err.Error(), "RayCluster") {
		t.Fatalf("error = %v, want one naming RayCluster", err)
	}
	_, err = reconcilekit.ApplyConfiguration(&rayv1.RayCluster{}, runtime.NewScheme())
	if err == nil {
		t.Fatal("a kind the scheme does not know was accepted")
	}
}
