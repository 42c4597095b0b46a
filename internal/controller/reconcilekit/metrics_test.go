package reconcilekit_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rayk8s/rayk8s/internal/controller/reconcilekit"
)

func TestRegisterReusesTheRegisteredCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "kit_test_total", Help: "Test counter."}
	first, err := reconcilekit.Register(reg, prometheus.NewCounterVec(opts, []string{"namespace"}))
	if err != nil {
		t.Fatal(err)
	}
	second, err := reconcilekit.Register(reg, prometheus.NewCounterVec(opts, []string{"namespace"}))
	if err != nil {
		t.Fatalf("registering the same metric again: %v", err)
	}
	if first != second {
		t.Fatal("the second registration did not return the registered collector")
	}
	second.WithLabelValues("ns").Inc()
	if got := testutil.ToFloat64(first.WithLabelValues("ns")); got != 1 {
		t.Fatalf("counter = %v after one increment through the reused collector, want 1", got)
	}
}

func TestRegisterReportsConflicts(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := reconcilekit.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kit_a", Help: "A."}, []string{"namespace"})); err != nil {
		t.Fatal(err)
	}
	// Same name, other labels: not the same metric.
	_, err := reconcilekit.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kit_a", Help: "A."}, []string{"reason"}))
	if err == nil {
		t.Fatal("a metric with the same name and other labels was accepted")
	}
	// Same descriptors, other collector type.
	if _, err := reconcilekit.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "kit_b", Help: "B."})); err != nil {
		t.Fatal(err)
	}
	_, err = reconcilekit.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kit_b", Help: "B."}, nil))
	if err == nil || !strings.Contains(err.Error(), "same descriptors") {
		t.Fatalf("error = %v, want one about a collector of another type", err)
	}
}
