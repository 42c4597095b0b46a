package serve_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/rayk8s/rayk8s/internal/serve/grpcproxy"
	"github.com/rayk8s/rayk8s/internal/testsupport/rayproc"
	"github.com/rayk8s/rayk8s/proto/serve/rayapi"
)

// grpcPython finds an interpreter whose replicas can import grpc and
// protobuf (Debian's python3-grpcio and python3-protobuf install into
// /usr/bin/python3): RAYK8S_SERVE_PYTHON when set, else python3 on PATH,
// else /usr/bin/python3.
func grpcPython() (string, []string) {
	candidates := []string{"python3", "/usr/bin/python3"}
	if p := os.Getenv("RAYK8S_SERVE_PYTHON"); p != "" {
		candidates = []string{p}
	}
	var tried []string
	for _, p := range candidates {
		if exec.Command(p, "-c", "import grpc, google.protobuf").Run() == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", tried
}

// helloRequest encodes greeter.HelloRequest{name, count} (python/examples/greeter.proto).
func helloRequest(name string, count int) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	if count > 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(count))
	}
	return b
}

// helloReply decodes greeter.HelloReply's message and replica_id.
func helloReply(t *testing.T, b []byte) (message, replicaID string) {
	t.Helper()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("malformed HelloReply: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			t.Fatalf("HelloReply field %d has wire type %d", num, typ)
		}
		v, m := protowire.ConsumeString(b)
		if m < 0 {
			t.Fatalf("malformed HelloReply: %v", protowire.ParseError(m))
		}
		b = b[m:]
		switch num {
		case 1:
			message = v
		case 2:
			replicaID = v
		}
	}
	return message, replicaID
}

func rawConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(grpcproxy.Codec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func streamAll(ctx context.Context, conn *grpc.ClientConn, method string, req []byte) ([][]byte, error) {
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method)
	if err != nil {
		return nil, err
	}
	if err := st.SendMsg(&req); err != nil {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		var m []byte
		err := st.RecvMsg(&m)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, m)
	}
}

func md(kv ...string) context.Context {
	return metadata.NewOutgoingContext(context.Background(), metadata.Pairs(kv...))
}

// gRPC through every node's gRPC proxy with a real gRPC client: the greeter
// sample's Python replicas (decoded with the generated classes) and Go
// built-ins, unary and server streaming, and every bad metadata value.
func TestGRPCSample(t *testing.T) {
	python, tried := grpcPython()
	if python == "" {
		t.Skipf("grpc is not importable by %v: install Debian's python3-grpcio and python3-protobuf "+
			"or set RAYK8S_SERVE_PYTHON to an interpreter that has them", tried)
	}
	c := startCluster(t, "RAYK8S_SERVE_PYTHON="+python)
	grpcPort := rayproc.FreePort(t)
	var cfg map[string]any
	if err := json.Unmarshal([]byte(c.sampleServeConfig(t, "ray-service.greeter.yaml")), &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["grpc_options"].(map[string]any)["port"] = grpcPort
	cfg["applications"] = append(cfg["applications"].([]any), map[string]any{"name": "echo", "import_path": "builtin:echo", "route_prefix": "/echo",
		"deployments": []any{map[string]any{"name": "echo", "ray_actor_options": map[string]any{"num_cpus": 0.1}}}})
	raw, _ := json.Marshal(cfg)
	c.mustPut(t, string(raw))
	c.waitRunning(t, "greeter", "tokens", "echo")

	var addrs []string
	for _, p := range c.proxies {
		host := strings.Split(strings.TrimPrefix(p, "http://"), ":")[0]
		addrs = append(addrs, fmt.Sprintf("%s:%d", host, grpcPort))
	}
	head := rawConn(t, addrs[0])
	eventually(t, "the head's gRPC proxy to be healthy", 10*time.Second, func() bool {
		var h rayapi.HealthzResponse
		return head.Invoke(context.Background(), "/ray.serve.RayServeAPIService/Healthz", &rayapi.HealthzRequest{}, &h) == nil && h.Message == "success"
	})
	var apps rayapi.ListApplicationsResponse
	if err := head.Invoke(context.Background(), "/ray.serve.RayServeAPIService/ListApplications", &rayapi.ListApplicationsRequest{}, &apps); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(apps.ApplicationNames, ","); got != "echo,greeter,tokens" {
		t.Fatalf("ListApplications = %s, want echo,greeter,tokens", got)
	}

	for _, addr := range addrs {
		conn := rawConn(t, addr)
		t.Run("python unary via "+addr, func(t *testing.T) {
			in, out := helloRequest("Ada", 0), []byte(nil)
			var trailer metadata.MD
			err := conn.Invoke(md("application", "greeter", "caller", "go", "request_id", "rid-"+addr), "/greeter.Greeter/SayHello", &in, &out, grpc.Trailer(&trailer))
			if err != nil {
				t.Fatal(err)
			}
			if msg, rid := helloReply(t, out); msg != "Hello, Ada! (from go)" || !strings.HasPrefix(rid, "greeter#Greeter#") {
				t.Errorf("SayHello = %q from %q", msg, rid)
			}
			if got := trailer.Get("request_id"); len(got) != 1 || got[0] != "rid-"+addr {
				t.Errorf("trailing request_id = %v", got)
			}
			if got := trailer.Get("greeted"); len(got) != 1 || got[0] != "Ada" {
				t.Errorf("trailing metadata the replica set: greeted = %v, want [Ada]", got)
			}
			// The replica's grpc_context sets the status.
			in = helloRequest("", 0)
			err = conn.Invoke(md("application", "greeter"), "/greeter.Greeter/SayHello", &in, &out)
			if s, _ := status.FromError(err); s.Code() != codes.InvalidArgument || s.Message() != "name: must not be empty" {
				t.Errorf("empty name: %v, want INVALID_ARGUMENT from grpc_context", err)
			}
		})
		t.Run("python server streaming via "+addr, func(t *testing.T) {
			msgs, err := streamAll(md("application", "greeter"), conn, "/greeter.Greeter/SayHelloStream", helloRequest("Bo", 4))
			if err != nil || len(msgs) != 4 {
				t.Fatalf("SayHelloStream: %d messages, %v; want 4", len(msgs), err)
			}
			for i, m := range msgs {
				if got, _ := helloReply(t, m); got != fmt.Sprintf("Hello, Bo #%d", i) {
					t.Errorf("message %d = %q", i, got)
				}
			}
		})
		t.Run("go built-ins via "+addr, func(t *testing.T) {
			in, out := []byte("raw bytes"), []byte(nil)
			if err := conn.Invoke(md("application", "echo"), "/any.Service/Echo", &in, &out); err != nil || string(out) != "raw bytes" {
				t.Errorf("builtin:echo = %q, %v", out, err)
			}
			msgs, err := streamAll(md("application", "tokens"), conn, "/any.Service/Tokens", []byte("chunks=5&interval_s=0&chunk_size=32"))
			if err != nil || len(msgs) != 5 {
				t.Errorf("builtin:stream: %d messages, %v; want 5", len(msgs), err)
			}
		})
		t.Run("bad metadata via "+addr, func(t *testing.T) {
			in, out := helloRequest("x", 0), []byte(nil)
			for _, bad := range []struct {
				name     string
				ctx      context.Context
				method   string
				code     codes.Code
				mentions string
			}{
				{"no application among three", context.Background(), "/greeter.Greeter/SayHello", codes.NotFound, "'application' metadata"},
				{"unknown application", md("application", "nope"), "/greeter.Greeter/SayHello", codes.NotFound, "Application 'nope' not found"},
				{"unknown method", md("application", "greeter"), "/greeter.Greeter/SayGoodbye", codes.Unimplemented, "Method 'SayGoodbye' not found in deployment 'Greeter'"},
			} {
				err := conn.Invoke(bad.ctx, bad.method, &in, &out)
				if s, _ := status.FromError(err); s.Code() != bad.code || !strings.Contains(s.Message(), bad.mentions) {
					t.Errorf("%s: %v, want %s mentioning %q", bad.name, err, bad.code, bad.mentions)
				}
			}
		})
	}

	// Every call above went through each node's gRPC proxy once; a worker's
	// metrics port (no health polling there) counts them under Ray's names.
	t.Run("gRPC metrics on a worker's metrics port", func(t *testing.T) {
		const sayHello = `method="/greeter.Greeter/SayHello"`
		for _, m := range []struct {
			name   string
			labels []string
			want   float64
		}{
			{"ray_serve_num_grpc_requests_total", []string{`application="greeter"`, `route="greeter"`, sayHello, `status_code="StatusCode.OK"`}, 1},
			{"ray_serve_num_grpc_requests_total", []string{`application="greeter"`, sayHello, `status_code="StatusCode.INVALID_ARGUMENT"`}, 1},
			{"ray_serve_num_grpc_requests_total", []string{`application="greeter"`, `method="/greeter.Greeter/SayHelloStream"`, `status_code="StatusCode.OK"`}, 1},
			{"ray_serve_num_grpc_requests_total", []string{`application="echo"`, `method="/any.Service/Echo"`, `status_code="StatusCode.OK"`}, 1},
			{"ray_serve_num_grpc_requests_total", []string{`application="tokens"`, `status_code="StatusCode.OK"`}, 1},
			{"ray_serve_grpc_request_latency_ms_count", []string{`application="greeter"`, sayHello, `status_code="StatusCode.OK"`}, 1},
			{"ray_serve_num_grpc_error_requests_total", []string{`application="greeter"`, sayHello, `error_code="StatusCode.INVALID_ARGUMENT"`}, 1},
			// Calls naming no deployed application, and a method nobody has,
			// are counted without the client's names.
			{"ray_serve_num_grpc_error_requests_total", []string{`application=""`, sayHello, `error_code="StatusCode.NOT_FOUND"`}, 2},
			{"ray_serve_num_grpc_error_requests_total", []string{`application="greeter"`, `method=""`, `error_code="StatusCode.UNIMPLEMENTED"`}, 1},
			{"ray_serve_num_grpc_requests_total", []string{`method="/greeter.Greeter/SayGoodbye"`}, 0},
			{"ray_serve_num_ongoing_grpc_requests", nil, 0},
		} {
			if got := c.metricSum(t, 1, m.name, m.labels...); got != m.want {
				t.Errorf("%s%v = %v, want %v", m.name, m.labels, got, m.want)
			}
		}
	})
}
