package resources

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOptionsFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Options
		wantErr string
	}{
		{name: "nothing set gives the defaults", env: nil, want: DefaultOptions()},
		{
			name: "every variable set",
			env: map[string]string{
				"CLUSTER_DOMAIN":                     "corp.example",
				"ENABLE_INIT_CONTAINER_INJECTION":    "false",
				"ENABLE_PROBES_INJECTION":            "FALSE",
				"ENABLE_LOGIN_SHELL":                 "true",
				"ENABLE_RAY_HEAD_CLUSTER_IP_SERVICE": "1",
				"ENABLE_DETERMINISTIC_HEAD_POD_NAME": "True",
			},
			want: Options{
				ClusterDomain:            "corp.example",
				EnableLoginShell:         true,
				HeadClusterIPService:     true,
				DeterministicHeadPodName: true,
			},
		},
		{name: "bad boolean names the variable", env: map[string]string{"ENABLE_PROBES_INJECTION": "sometimes"}, wantErr: "ENABLE_PROBES_INJECTION"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := OptionsFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultOptions(t *testing.T) {
	o := DefaultOptions()
	if o.ClusterDomain != "cluster.local" || !o.EnableInitContainerInjection || !o.EnableProbesInjection ||
		o.EnableLoginShell || o.HeadClusterIPService || o.DeterministicHeadPodName {
		t.Errorf("DefaultOptions() = %+v", o)
	}
}
