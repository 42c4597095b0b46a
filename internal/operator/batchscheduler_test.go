package operator

import (
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// A batch scheduler whose PodGroup CRD is not served stops the manager at startup with an error
// naming the flag, the scheduler and the missing kind; once the CRD is installed the manager
// builds. Schedulers that need no object start without any CRD.
var _ = Describe("The manager with a batch scheduler", Ordered, func() {
	It("refuses the legacy switch, meaning volcano, without Volcano's CRD", func() {
		opts, err := parse("--metrics-addr=0", "--health-probe-bind-address=0", "--enable-leader-election=false", "--enable-batch-scheduler")
		Expect(err).NotTo(HaveOccurred())
		_, err = NewManager(env.Config, NewScheme(), opts)
		Expect(err).To(MatchError(ContainSubstring("--enable-batch-scheduler: batch scheduler volcano needs the PodGroup CRD")))
	})

	DescribeTable("needs the scheduler's PodGroup CRD",
		func(scheduler, crdFile, kind string) {
			args := []string{"--metrics-addr=0", "--health-probe-bind-address=0", "--enable-leader-election=false", "--batch-scheduler=" + scheduler}
			opts, err := parse(args...)
			Expect(err).NotTo(HaveOccurred())
			_, err = NewManager(env.Config, NewScheme(), opts)
			Expect(err).To(MatchError(And(ContainSubstring("--batch-scheduler"), ContainSubstring(scheduler), ContainSubstring(kind))))

			dir, err := testenv.BatchSchedulerCRDs()
			Expect(err).NotTo(HaveOccurred())
			install := envtest.CRDInstallOptions{Paths: []string{filepath.Join(dir, crdFile)}}
			_, err = envtest.InstallCRDs(env.Config, install)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func() { Expect(envtest.UninstallCRDs(env.Config, install)).To(Succeed()) })
			_, err = NewManager(env.Config, NewScheme(), opts)
			Expect(err).NotTo(HaveOccurred())
		},
		Entry("volcano", "volcano", "volcano-podgroups.yaml", "PodGroup CRD (scheduling.volcano.sh/v1beta1)"),
		Entry("scheduler-plugins", "scheduler-plugins", "scheduler-plugins-podgroups.yaml", "PodGroup CRD (scheduling.x-k8s.io/v1alpha1)"),
	)

	DescribeTable("starts without a CRD when the scheduler needs no object",
		func(args ...string) {
			opts, err := parse(append([]string{"--metrics-addr=0", "--health-probe-bind-address=0", "--enable-leader-election=false"}, args...)...)
			Expect(err).NotTo(HaveOccurred())
			_, err = NewManager(env.Config, NewScheme(), opts)
			Expect(err).NotTo(HaveOccurred())
		},
		Entry("yunikorn", "--batch-scheduler=yunikorn"),
		Entry("kai-scheduler", "--batch-scheduler=kai-scheduler"),
		Entry("default", "--batch-scheduler=default"),
	)
})
