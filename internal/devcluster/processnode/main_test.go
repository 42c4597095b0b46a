package processnode

import (
	"os"
	"testing"

	"github.com/rayk8s/rayk8s/internal/devcluster/podinit"
)

// Containers started by the tests run under this test binary (podinit's helper).
func TestMain(m *testing.M) {
	podinit.RunIfHelper()
	os.Exit(m.Run())
}
