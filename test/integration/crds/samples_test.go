package crds

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// sample is one RayCluster, RayJob, RayService or RayCronJob document of a sample file.
type sample struct {
	file  string
	index int // position of the document in the file
	obj   *unstructured.Unstructured
}

func (s sample) name() string {
	return fmt.Sprintf("%s#%d_%s", filepath.Base(s.file), s.index, s.obj.GetKind())
}

// readSamples returns every ray.io/v1 RayCluster, RayJob, RayService and RayCronJob document of
// the *.yaml files in dir. Other kinds (Ingress, GatewayClass, ...) are skipped.
func readSamples(dir string) ([]sample, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("listing samples in %s: %w", dir, err)
	}
	var out []sample
	for _, file := range files {
		if filepath.Base(file) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("reading sample: %w", err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for index := 0; ; index++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: reading document %d: %w", file, index, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, index, err)
			}
			if string(j) == "null" {
				continue
			}
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(j); err != nil {
				return nil, fmt.Errorf("%s: document %d: %w", file, index, err)
			}
			if obj.GetAPIVersion() != "ray.io/v1" {
				continue
			}
			switch obj.GetKind() {
			case "RayCluster", "RayJob", "RayService", "RayCronJob":
				out = append(out, sample{file: file, index: index, obj: obj})
			}
		}
	}
	return out, nil
}

// Every RayCluster, RayJob, RayService and RayCronJob document of KubeRay's samples, and of config/samples, is
// created with strict field validation and read back: nothing may be lost.
var _ = Describe("Samples", func() {
	Describe("KubeRay's", func() {
		shared := testenv.SharedDir()
		if shared == "" {
			It("are available", func() {
				Skip("../shared not found: KubeRay's samples are only available in the development workspace")
			})
			return
		}
		samples, err := readSamples(filepath.Join(shared, "kuberay", "samples"))
		It("are read", func() {
			Expect(err).NotTo(HaveOccurred())
			// KubeRay ships dozens of samples of the three kinds; very few means the directory is wrong.
			Expect(len(samples)).To(BeNumerically(">=", 10), "samples found in %s", shared)
		})
		samplesAccepted(samples)
	})

	Describe("config/samples", func() {
		root, err := testenv.RepoRoot()
		var samples []sample
		if err == nil {
			samples, err = readSamples(filepath.Join(root, "config", "samples"))
		}
		It("are read and hold at least one of each kind", func() {
			Expect(err).NotTo(HaveOccurred())
			kinds := map[string]int{}
			for _, s := range samples {
				kinds[s.obj.GetKind()]++
			}
			for _, k := range []string{"RayCluster", "RayJob", "RayService", "RayCronJob"} {
				Expect(kinds).To(HaveKeyWithValue(k, BeNumerically(">", 0)), "config/samples has no %s", k)
			}
		})
		samplesAccepted(samples)
	})
})

// samplesAccepted declares one spec per sample.
func samplesAccepted(samples []sample) {
	for _, s := range samples {
		It("stores "+s.name()+" without loss", func() {
			ctx := context.Background()
			c := strictClient(env.Client)
			in := s.obj.DeepCopy()
			in.SetNamespace(newNamespace(ctx, env.Client, "samples"))
			sent := in.DeepCopy()
			Expect(c.Create(ctx, in)).To(Succeed(), "create rejected")
			stored := &unstructured.Unstructured{}
			stored.SetGroupVersionKind(in.GroupVersionKind())
			Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(in), stored)).To(Succeed(), "reading back")
			if sent.GetGenerateName() != "" {
				// The API server picked the name; everything else must be as sent.
				sent.SetName(stored.GetName())
			}
			lost, notes := lostFields(canonical(sent.Object), canonical(stored.Object), "")
			for _, n := range notes {
				GinkgoWriter.Println(n)
			}
			sort.Strings(lost)
			Expect(lost).To(BeEmpty(), "fields lost or changed when stored")
		})
	}
}

// canonical re-decodes a JSON object keeping numbers exact (json.Number), so that an integer sent
// as 1 and read back as 1 compare equal regardless of the Go type the decoder chose.
func canonical(obj map[string]any) any {
	GinkgoHelper()
	data, err := json.Marshal(obj)
	Expect(err).NotTo(HaveOccurred())
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var out any
	Expect(d.Decode(&out)).To(Succeed())
	return out
}

// lostFields returns the paths of values present in sent that are missing from stored or differ.
// stored may hold more (defaults, metadata the API server adds). Two normalisations are tolerated
// and reported as notes:
//   - a null in the input is dropped by the API server for fields that are not nullable; it
//     carried no value, so nothing is lost;
//   - numbers are compared by value (1 == 1.0), and a string and a number, or two strings, that are
//     the same resource.Quantity (e.g. "1000m" and "1") are treated as equal. The API server stores
//     custom resources as JSON without a Go round trip, so it does not rewrite quantities today; the
//     tolerance only keeps the test about loss of information rather than formatting.
func lostFields(sent, stored any, path string) (lost, notes []string) {
	switch want := sent.(type) {
	case map[string]any:
		got, ok := stored.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: sent an object, stored %s", orRoot(path), describe(stored))}, nil
		}
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "." + k
			v, present := got[k]
			if want[k] == nil {
				if present && v != nil {
					lost = append(lost, fmt.Sprintf("%s: sent null, stored %s", p, describe(v)))
				} else if !present {
					notes = append(notes, fmt.Sprintf("%s: null dropped by the API server (no value lost)", p))
				}
				continue
			}
			if !present {
				lost = append(lost, fmt.Sprintf("%s: missing (sent %s)", p, describe(want[k])))
				continue
			}
			l, n := lostFields(want[k], v, p)
			lost, notes = append(lost, l...), append(notes, n...)
		}
		return lost, notes
	case []any:
		got, ok := stored.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: sent a list, stored %s", orRoot(path), describe(stored))}, nil
		}
		if len(got) != len(want) {
			return []string{fmt.Sprintf("%s: sent %d items, stored %d", orRoot(path), len(want), len(got))}, nil
		}
		for i := range want {
			l, n := lostFields(want[i], got[i], fmt.Sprintf("%s[%d]", path, i))
			lost, notes = append(lost, l...), append(notes, n...)
		}
		return lost, notes
	default:
		equal, note := scalarsEqual(sent, stored)
		if !equal {
			return []string{fmt.Sprintf("%s: sent %s, stored %s", orRoot(path), describe(sent), describe(stored))}, nil
		}
		if note != "" {
			notes = append(notes, fmt.Sprintf("%s: %s", orRoot(path), note))
		}
		return nil, notes
	}
}

func scalarsEqual(a, b any) (bool, string) {
	if a == b {
		return true, ""
	}
	an, aNum := a.(json.Number)
	bn, bNum := b.(json.Number)
	if aNum && bNum {
		ar, ok1 := new(big.Rat).SetString(an.String())
		br, ok2 := new(big.Rat).SetString(bn.String())
		if ok1 && ok2 && ar.Cmp(br) == 0 {
			return true, fmt.Sprintf("number %s stored as %s", an, bn)
		}
		return false, ""
	}
	aq, aOK := quantity(a)
	bq, bOK := quantity(b)
	if aOK && bOK && aq.Cmp(bq) == 0 {
		return true, fmt.Sprintf("quantity %v stored as %v (same value)", a, b)
	}
	return false, ""
}

func quantity(v any) (resource.Quantity, bool) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	default:
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(s)
	return q, err == nil
}

func describe(v any) string {
	if v == nil {
		return "nothing"
	}
	data, err := json.Marshal(v)
	if err != nil || len(data) > 80 {
		return fmt.Sprintf("a %T", v)
	}
	return string(data)
}

func orRoot(path string) string {
	if path == "" {
		return "<root>"
	}
	return path
}

// TestLostFieldsDetectsLoss proves the comparison used above fails when it should.
func TestLostFieldsDetectsLoss(t *testing.T) {
	parse := func(s string) any {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		name, sent, stored string
		wantLost           []string
	}{
		{"identical", `{"a":{"b":[1,"x"]}}`, `{"a":{"b":[1,"x"]}}`, nil},
		{"defaults added", `{"a":{}}`, `{"a":{"d":0},"status":{}}`, nil},
		{"dropped field", `{"a":{"b":1,"c":2}}`, `{"a":{"b":1}}`, []string{".a.c: missing (sent 2)"}},
		{"changed value", `{"a":"x"}`, `{"a":"y"}`, []string{`.a: sent "x", stored "y"`}},
		{"list shortened", `{"a":[1,2]}`, `{"a":[1]}`, []string{".a: sent 2 items, stored 1"}},
		{"nested in list", `{"a":[{"b":true}]}`, `{"a":[{}]}`, []string{".a[0].b: missing (sent true)"}},
		{"null dropped", `{"a":null}`, `{}`, nil},
		{"same number", `{"a":1}`, `{"a":1.0}`, nil},
		{"same quantity", `{"cpu":"1000m"}`, `{"cpu":"1"}`, nil},
		{"different quantity", `{"cpu":"1500m"}`, `{"cpu":"1"}`, []string{`.cpu: sent "1500m", stored "1"`}},
		{"type changed", `{"a":"1x"}`, `{"a":{"b":1}}`, []string{`.a: sent "1x", stored {"b":1}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lost, _ := lostFields(parse(tc.sent), parse(tc.stored), "")
			if strings.Join(lost, "|") != strings.Join(tc.wantLost, "|") {
				t.Errorf("lost = %q, want %q", lost, tc.wantLost)
			}
		})
	}
}
