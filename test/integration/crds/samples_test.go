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

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// sample is one RayCluster, RayJob or RayService document of a sample file.
type sample struct {
	file  string
	index int // position of the document in the file
	obj   *unstructured.Unstructured
}

func (s sample) name() string {
	return fmt.Sprintf("%s#%d_%s", filepath.Base(s.file), s.index, s.obj.GetKind())
}

// readSamples returns every ray.io/v1 RayCluster, RayJob and RayService document of the *.yaml
// files in dir. Other kinds (Ingress, GatewayClass, RayCronJob, ...) are skipped.
func readSamples(t *testing.T, dir string) []sample {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, file := range files {
		if filepath.Base(file) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
		for index := 0; ; index++ {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: reading document %d: %v", file, index, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				t.Fatalf("%s: document %d: %v", file, index, err)
			}
			if string(j) == "null" {
				continue
			}
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(j); err != nil {
				t.Fatalf("%s: document %d: %v", file, index, err)
			}
			if obj.GetAPIVersion() != "ray.io/v1" {
				continue
			}
			switch obj.GetKind() {
			case "RayCluster", "RayJob", "RayService":
				out = append(out, sample{file: file, index: index, obj: obj})
			}
		}
	}
	return out
}

// TestKubeRaySamplesAccepted creates every RayCluster, RayJob and RayService document of KubeRay's
// samples with strict field validation and checks that nothing was lost.
func TestKubeRaySamplesAccepted(t *testing.T) {
	shared := sharedDirOrSkip(t)
	samples := readSamples(t, filepath.Join(shared, "kuberay", "samples"))
	// KubeRay ships dozens of samples of the three kinds; very few means the directory is wrong.
	if len(samples) < 10 {
		t.Fatalf("found only %d samples in %s", len(samples), shared)
	}
	testSamplesAccepted(t, samples)
}

// TestOwnSamplesAccepted does the same for config/samples, with at least one of each kind.
func TestOwnSamplesAccepted(t *testing.T) {
	samples := readSamples(t, filepath.Join(repoRoot(t), "config", "samples"))
	kinds := map[string]int{}
	for _, s := range samples {
		kinds[s.obj.GetKind()]++
	}
	for _, k := range []string{"RayCluster", "RayJob", "RayService"} {
		if kinds[k] == 0 {
			t.Errorf("config/samples has no %s", k)
		}
	}
	testSamplesAccepted(t, samples)
}

func testSamplesAccepted(t *testing.T, samples []sample) {
	e := apiServer(t)
	ctx := context.Background()
	c := strictClient(e.Client)
	accepted := 0
	for _, s := range samples {
		ok := t.Run(s.name(), func(t *testing.T) {
			in := s.obj.DeepCopy()
			in.SetNamespace(newNamespace(ctx, t, e.Client, "samples"))
			sent := in.DeepCopy()
			if err := c.Create(ctx, in); err != nil {
				t.Fatalf("create rejected: %v", err)
			}
			stored := &unstructured.Unstructured{}
			stored.SetGroupVersionKind(in.GroupVersionKind())
			if err := e.Client.Get(ctx, client.ObjectKeyFromObject(in), stored); err != nil {
				t.Fatalf("reading back: %v", err)
			}
			if sent.GetGenerateName() != "" {
				// The API server picked the name; everything else must be as sent.
				sent.SetName(stored.GetName())
			}
			lost, notes := lostFields(canonical(t, sent.Object), canonical(t, stored.Object), "")
			for _, n := range notes {
				t.Log(n)
			}
			if len(lost) > 0 {
				sort.Strings(lost)
				t.Errorf("%d fields were lost or changed when stored:\n  %s", len(lost), strings.Join(lost, "\n  "))
			}
		})
		if ok {
			accepted++
		}
	}
	t.Logf("%d of %d documents accepted and stored without loss", accepted, len(samples))
}

// canonical re-decodes a JSON object keeping numbers exact (json.Number), so that an integer sent
// as 1 and read back as 1 compare equal regardless of the Go type the decoder chose.
func canonical(t *testing.T, obj map[string]any) any {
	t.Helper()
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
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
