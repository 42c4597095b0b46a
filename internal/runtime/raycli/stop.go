package raycli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// pidDir holds one file per running `ray start` process, named by pid. It
// sits under $RAY_TMPDIR (not --temp-dir) so `ray stop` finds every node.
func pidDir(getenv env) string {
	return filepath.Join(tempRoot(getenv), "rayk8s-pids")
}

func writePidFile(getenv env) (string, error) {
	dir := pidDir(getenv)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating pid directory: %w", err)
	}
	path := filepath.Join(dir, strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("writing pid file: %w", err)
	}
	return path, nil
}

var stopFlags = append([]flagSpec{
	{name: "force", kind: boolFlag, short: "f", usage: "Kill the nodes at once (SIGKILL) instead of asking them to stop (SIGTERM)"},
	{name: "grace-period", kind: valueFlag, short: "g", usage: "Time to wait after SIGTERM before killing the nodes still running (`seconds`; default 16)"},
}, loggingFlags...)

func (c *cli) stopCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS]",
		Short: "Stop the Ray nodes started on this machine.",
		Args:  unexpectedArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return exit(c.stop(&parsedFlags{fs: cmd.Flags(), args: args}))
		},
	}
	addFlags(cmd, stopFlags)
	return cmd
}

// stop signals every node recorded in the pid directory: SIGTERM, then
// SIGKILL for those still alive after the grace period (at once with -f).
func (c *cli) stop(p *parsedFlags) int {
	grace := 16 * time.Second
	if v := p.str("grace-period"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 0 {
			fmt.Fprintf(c.stderr, "ray stop: invalid --grace-period %q\n", v)
			return 1
		}
		grace = time.Duration(secs) * time.Second
	}
	dir := pidDir(c.getenv)
	entries, _ := os.ReadDir(dir)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if !isRayStart(pid) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
			continue
		}
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		fmt.Fprintln(c.stdout, "Did not find any active Ray processes.")
		return 0
	}
	sig := syscall.SIGTERM
	if p.bool("force") {
		sig = syscall.SIGKILL
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) && anyAlive(pids) {
		time.Sleep(50 * time.Millisecond)
	}
	killed := 0
	for _, pid := range pids {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed++
		}
		_ = os.Remove(filepath.Join(dir, strconv.Itoa(pid)))
	}
	if killed > 0 {
		fmt.Fprintf(c.stdout, "Force-killed %d Ray process(es) still alive after %s.\n", killed, grace)
	}
	fmt.Fprintf(c.stdout, "Stopped all %d Ray processes.\n", len(pids))
	return 0
}

// isRayStart checks the pid still belongs to a `ray start`, so a recycled
// pid is never signalled.
func isRayStart(pid int) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	return len(args) >= 2 && args[1] == "start"
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie has exited; it only waits to be reaped by its parent.
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(raw), ')'); i >= 0 && i+2 < len(raw) {
		return raw[i+2] != 'Z'
	}
	return true
}

func anyAlive(pids []int) bool {
	for _, p := range pids {
		if alive(p) {
			return true
		}
	}
	return false
}
