package podinit

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"
)

func TestMain(m *testing.M) {
	RunIfHelper()
	os.Exit(m.Run())
}

// TestHelperJoinsNetNSOnMainThread starts the helper several times and checks that the process
// as a whole (its main thread, which is what nsenter --target and /proc/<pid>/ns/net see) is in
// the pod's network namespace, not only the thread that called setns.
func TestHelperJoinsNetNSOnMainThread(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	name := fmt.Sprintf("rk8s-podinit-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer func() { _ = exec.Command("ip", "netns", "delete", name).Run() }()
	nsPath := "/run/netns/" + name
	var want string
	{
		fi, err := os.Stat(nsPath)
		if err != nil {
			t.Fatal(err)
		}
		want = fmt.Sprintf("net:[%d]", inode(fi))
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	g := gomega.NewWithT(t)
	for i := 0; i < 10; i++ {
		cmd, err := Command(self, Spec{NetNS: nsPath, Path: "/bin/sleep", Args: []string{"sleep", "30"}, Env: os.Environ()}, os.Stdout, os.Stderr)
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}()
			// The helper joins the namespace right after exec.
			g.Eventually(func() (string, error) {
				return os.Readlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
			}).WithTimeout(time.Second).WithPolling(10*time.Millisecond).Should(gomega.Equal(want),
				"start %d: /proc/<helper>/ns/net, want the pod's", i)
		}()
	}
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
