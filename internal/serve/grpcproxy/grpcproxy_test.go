package grpcproxy

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPickApp(t *testing.T) {
	for _, c := range []struct {
		apps      []string
		requested string
		want      string
		code      codes.Code
		mentions  string
	}{
		{[]string{"only"}, "", "only", codes.OK, ""},
		{[]string{"a", "b"}, "b", "b", codes.OK, ""},
		{[]string{"a", "b"}, "", "", codes.NotFound, "'application' metadata"},
		{[]string{"a", "b"}, "c", "", codes.NotFound, "Application 'c' not found"},
		{[]string{"only"}, "other", "", codes.NotFound, "'other'"},
		{nil, "", "", codes.Unavailable, MsgNoApps},
	} {
		got, err := PickApp(c.apps, c.requested)
		s, _ := status.FromError(err)
		if got != c.want || s.Code() != c.code || !strings.Contains(s.Message(), c.mentions) {
			t.Errorf("PickApp(%v, %q) = %q, %v; want %q, %s mentioning %q", c.apps, c.requested, got, err, c.want, c.code, c.mentions)
		}
	}
}

func TestSplitMethod(t *testing.T) {
	for full, want := range map[string][2]string{
		"/pkg.Svc/Method":                       {"pkg.Svc", "Method"},
		"/ray.serve.RayServeAPIService/Healthz": {"ray.serve.RayServeAPIService", "Healthz"},
		"/Svc/__call__":                         {"Svc", "__call__"},
	} {
		s, m, ok := SplitMethod(full)
		if !ok || s != want[0] || m != want[1] {
			t.Errorf("SplitMethod(%q) = %q, %q, %v; want %v", full, s, m, ok, want)
		}
	}
	for _, bad := range []string{"", "/", "/nomethod", "/Svc/"} {
		if _, _, ok := SplitMethod(bad); ok {
			t.Errorf("SplitMethod(%q) accepted a malformed name", bad)
		}
	}
}
