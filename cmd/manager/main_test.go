package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// kuberayFlags are the flags of KubeRay's operator binary; a Deployment written for it must parse
// here.
var kuberayFlags = []string{
	"metrics-addr", "health-probe-bind-address", "enable-leader-election", "leader-election-namespace",
	"reconcile-concurrency", "watch-namespace", "forced-cluster-upgrade", "log-file-path", "log-file-encoder",
	"log-stdout-encoder", "enable-batch-scheduler", "batch-scheduler", "config", "use-kubernetes-proxy",
	"feature-gates", "enable-metrics", "qps", "burst",
}

func TestHelpListsEveryKubeRayFlag(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, &out); err != nil {
		t.Fatalf("--help: %v", err)
	}
	for _, f := range kuberayFlags {
		if !strings.Contains(out.String(), "  -"+f+" ") && !strings.Contains(out.String(), "  -"+f+"\n") {
			t.Errorf("--help does not list -%s:\n%s", f, out.String())
		}
	}
	if strings.Contains(out.String(), "RayCronJob=true") {
		t.Error("--help uses RayCronJob=true, a gate this build refuses, as its example")
	}
}

// TestStartupRefusals runs the binary's entry point with settings it must refuse before it ever
// contacts a cluster: each fails with one line naming what is not supported.
func TestStartupRefusals(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--batch-scheduler=slurm"}, `--batch-scheduler: unknown batch scheduler "slurm"`},
		{[]string{"--batch-scheduler=volcano", "--enable-batch-scheduler"}, "batch-scheduler"},
		{[]string{"--no-such-flag"}, "no-such-flag"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			err := run(context.Background(), tt.args, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans several lines: %q", err)
			}
		})
	}
}
