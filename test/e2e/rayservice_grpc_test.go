package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// The gRPC sample RayService (config/samples/ray-service.greeter.yaml) called with a Go gRPC client
// through its serve Service's ClusterIP on port 9000 — the test process must reach ClusterIPs, as on
// the local cluster's process node — while its serve config changes in place: not one RPC may fail.
// The client speaks greeter.proto (python/examples) by hand with protowire, so no generated Go code
// is needed.
var _ = ginkgo.Describe("RayService over gRPC", ginkgo.Ordered, func() {
	var (
		ns, name, target string
		conn             *grpc.ClientConn
	)

	ginkgo.BeforeAll(func(ctx context.Context) {
		ns = newNamespace(ctx)
	})
	ginkgo.AfterAll(func() {
		if conn != nil {
			_ = conn.Close()
		}
	})

	ginkgo.It("serves unary and streaming RPCs through the serve Service", func(ctx context.Context) {
		rs := &rayv1.RayService{}
		readSample("", "ray-service.greeter.yaml", rs)
		rs.Namespace = ns
		name = rs.Name
		gomega.Expect(cl.Create(ctx, rs)).To(gomega.Succeed())
		gomega.Eventually(func(g gomega.Gomega) {
			got := &rayv1.RayService{}
			g.Expect(cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, got)).To(gomega.Succeed())
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, string(rayv1.RayServiceReady))).To(gomega.BeTrue(), "Ready: %+v", got.Status.Conditions)
		}).WithContext(ctx).Should(gomega.Succeed())
		svc, err := k8s.CoreV1().Services(ns).Get(ctx, rs.Spec.ServeService.Name, metav1.GetOptions{})
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		target = fmt.Sprintf("%s:9000", svc.Spec.ClusterIP)
		conn, err = grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
		gomega.Expect(err).NotTo(gomega.HaveOccurred())

		gomega.Eventually(func() (string, error) { return sayHello(ctx, conn, "Ada") }).WithContext(ctx).
			Should(gomega.HavePrefix("Hello, Ada!"), "SayHello through %s", target)
		replies, err := sayHelloStream(ctx, conn, "Bo", 3)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(replies).To(gomega.Equal([]string{"Hello, Bo #0", "Hello, Bo #1", "Hello, Bo #2"}))
	})

	ginkgo.It("changes the serve config in place without a failed RPC", func(ctx context.Context) {
		var ok, failed atomic.Int64
		var lastErr atomic.Value
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := sayHello(ctx, conn, "Load"); err != nil {
						failed.Add(1)
						lastErr.Store(err.Error())
					} else {
						ok.Add(1)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
		updateObject(ctx, client.ObjectKey{Namespace: ns, Name: name}, &rayv1.RayService{}, func(rs *rayv1.RayService) {
			rs.Spec.ServeConfigV2 = strings.Replace(rs.Spec.ServeConfigV2, "greeting: Hello", "greeting: Howdy", 1)
		})
		gomega.Eventually(func() (string, error) { return sayHello(ctx, conn, "Ada") }).WithContext(ctx).
			Should(gomega.HavePrefix("Howdy, Ada!"))
		close(stop)
		wg.Wait()
		ginkgo.AddReportEntry("gRPC serve config change", fmt.Sprintf("%d RPCs succeeded, %d failed", ok.Load(), failed.Load()))
		gomega.Expect(ok.Load()).To(gomega.BeNumerically(">", 0))
		gomega.Expect(failed.Load()).To(gomega.BeZero(), "failed RPCs during the change; last: %v", lastErr.Load())
	})
})

// rawCodec sends and receives messages as bytes.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("cannot encode %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("cannot decode into %T", v)
	}
	*b = data.Materialize()
	return nil
}

func greeterContext(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "application", "greeter")
}

// helloRequest encodes greeter.HelloRequest{name, count}.
func helloRequest(name string, count int) []byte {
	b := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), name)
	return protowire.AppendVarint(protowire.AppendTag(b, 2, protowire.VarintType), uint64(count))
}

// helloMessage decodes greeter.HelloReply's message field.
func helloMessage(b []byte) (string, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		b = b[n:]
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return "", protowire.ParseError(m)
		}
		if num == 1 && typ == protowire.BytesType {
			v, _ := protowire.ConsumeString(b)
			return v, nil
		}
		b = b[m:]
	}
	return "", nil
}

func sayHello(ctx context.Context, conn *grpc.ClientConn, name string) (string, error) {
	in, out := helloRequest(name, 0), []byte(nil)
	ctx, cancel := context.WithTimeout(greeterContext(ctx), 10*time.Second)
	defer cancel()
	if err := conn.Invoke(ctx, "/greeter.Greeter/SayHello", &in, &out); err != nil {
		return "", err
	}
	return helloMessage(out)
}

func sayHelloStream(ctx context.Context, conn *grpc.ClientConn, name string, count int) ([]string, error) {
	st, err := conn.NewStream(greeterContext(ctx), &grpc.StreamDesc{ServerStreams: true}, "/greeter.Greeter/SayHelloStream")
	if err != nil {
		return nil, err
	}
	in := helloRequest(name, count)
	if err := st.SendMsg(&in); err != nil {
		return nil, err
	}
	if err := st.CloseSend(); err != nil {
		return nil, err
	}
	var out []string
	for {
		var m []byte
		if err := st.RecvMsg(&m); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, err
		}
		s, err := helloMessage(m)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
}
