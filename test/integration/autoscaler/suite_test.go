// Package autoscaler runs the cluster autoscaler sidecar's rounds against a real API server
// (envtest) and our in-process head's control service over gRPC. The autoscaler's client
// impersonates the head's ServiceAccount and has only the Role the operator's builders create, so
// every read and patch here proves that Role is enough.
package autoscaler

import (
	"testing"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// env is the one control plane every spec of the package shares; each spec works in its own
// namespace.
var env *testenv.Env

func TestAutoscaler(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Autoscaler integration suite")
}

var _ = BeforeSuite(func() {
	ctrllog.SetLogger(logr.Discard())
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(env.Stop)
})
