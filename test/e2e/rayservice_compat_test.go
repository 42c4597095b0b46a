package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	rayv1 "github.com/rayk8s/rayk8s/api/v1"
)

// serveURL creates the RayService of a config/samples file in a new namespace, waits until it is
// Ready and returns the base URL of its serve Service's ClusterIP (the test process reaches
// ClusterIPs, as on the local cluster's process node).
func serveURL(ctx context.Context, sample string) string {
	rs := &rayv1.RayService{}
	readSample("", sample, rs)
	rs.Namespace = newNamespace(ctx)
	gomega.Expect(cl.Create(ctx, rs)).To(gomega.Succeed())
	gomega.Eventually(func(g gomega.Gomega) {
		got := &rayv1.RayService{}
		g.Expect(cl.Get(ctx, client.ObjectKeyFromObject(rs), got)).To(gomega.Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, string(rayv1.RayServiceReady))).To(gomega.BeTrue(), "Ready: %+v", got.Status.Conditions)
	}).WithContext(ctx).Should(gomega.Succeed())
	svc, err := k8s.CoreV1().Services(rs.Namespace).Get(ctx, rs.Name+"-serve-svc", metav1.GetOptions{})
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(svc.Spec.ClusterIP).NotTo(gomega.BeEmpty())
	return fmt.Sprintf("http://%s:8000", svc.Spec.ClusterIP)
}

// httpCall sends one request and returns the status and body.
func httpCall(ctx context.Context, method, url, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// python/examples/ray_serve/fastapi_app.py is a driver script written for Ray; the sample
// deploys its module-level application as it is.
var _ = ginkgo.Describe("RayService runs an unchanged Ray Serve app", ginkgo.Ordered, func() {
	var base string

	ginkgo.It("serves the FastAPI app through the serve Service", func(ctx context.Context) {
		base = serveURL(ctx, "ray-service.fastapi.yaml") + "/shop"
		gomega.Eventually(func() (string, error) {
			_, body, err := httpCall(ctx, http.MethodGet, base+"/", "")
			return body, err
		}).WithContext(ctx).Should(gomega.Equal(`"hello from the shop"`))
		code, body, err := httpCall(ctx, http.MethodGet, base+"/items/7?verbose=true", "")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(http.StatusOK))
		gomega.Expect(body).To(gomega.MatchJSON(`{"item_id": 7, "verbose": true}`))
	})

	ginkgo.It("answers with FastAPI's validation errors and a route that calls another deployment", func(ctx context.Context) {
		code, body, err := httpCall(ctx, http.MethodPost, base+"/orders", `{"item": "apple", "quantity": 4}`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(http.StatusCreated), body)
		var order map[string]any
		gomega.Expect(json.Unmarshal([]byte(body), &order)).To(gomega.Succeed())
		gomega.Expect(order).To(gomega.HaveKeyWithValue("total", 2.0), "the Pricer deployment's price times the quantity")

		code, body, err = httpCall(ctx, http.MethodPost, base+"/orders", `{"quantity": 4}`)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(http.StatusUnprocessableEntity))
		gomega.Expect(body).To(gomega.ContainSubstring(`"loc":["body","item"]`))

		code, body, err = httpCall(ctx, http.MethodGet, base+"/docs", "")
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(code).To(gomega.Equal(http.StatusOK))
		gomega.Expect(body).To(gomega.ContainSubstring("/shop/openapi.json"), "the docs page points under the route prefix")
	})
})

// The streaming sample (config/samples/ray-service.textgen.yaml) generates a token every 50 ms.
// Asked for 10000 tokens (over 8 minutes), the client gets the first ones well within the
// request's 30 s bound only if they are sent as they are produced; hanging up then stops the
// generator, which its stats count.
var _ = ginkgo.Describe("RayService streams", ginkgo.Ordered, func() {
	ginkgo.It("delivers the text generator's tokens incrementally through the serve Service and stops it when the client hangs up", func(ctx context.Context) {
		base := serveURL(ctx, "ray-service.textgen.yaml") + "/generate"
		stopped := func() (float64, error) {
			_, body, err := httpCall(ctx, http.MethodGet, base+"/stats", "")
			if err != nil {
				return 0, err
			}
			var s struct {
				Stopped float64 `json:"stopped"`
			}
			return s.Stopped, json.Unmarshal([]byte(body), &s)
		}
		gomega.Eventually(stopped).WithContext(ctx).Should(gomega.BeZero())

		reqCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, base+"?prompt=hello+world&tokens=10000", nil)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		resp, err := http.DefaultClient.Do(req)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		gomega.Expect(resp.StatusCode).To(gomega.Equal(http.StatusOK))
		var got strings.Builder
		buf := make([]byte, 4096)
		for !strings.Contains(got.String(), "world-3 ") {
			n, err := resp.Body.Read(buf)
			got.Write(buf[:n])
			gomega.Expect(err).NotTo(gomega.HaveOccurred(), "reading the stream; got %q", got.String())
		}
		gomega.Expect(got.String()).To(gomega.HavePrefix("hello-0 world-1 hello-2 world-3 "))
		_ = resp.Body.Close()
		cancel()

		gomega.Eventually(stopped).WithContext(ctx).Should(gomega.BeNumerically(">=", 1), "the generator stopped after the client hung up")
	})
})
