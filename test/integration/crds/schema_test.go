package crds

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/rayk8s/rayk8s/internal/testsupport/testenv"
)

// kinds are the ray.io kinds rayk8s serves, by CRD file name.
var kinds = []struct{ kind, file string }{
	{"RayCluster", "ray.io_rayclusters.yaml"},
	{"RayJob", "ray.io_rayjobs.yaml"},
	{"RayService", "ray.io_rayservices.yaml"},
	{"RayCronJob", "ray.io_raycronjobs.yaml"},
}

// sharedDirOrSkip returns the development workspace's ../shared or skips the test: KubeRay's
// reference CRDs and samples are not part of the repository.
func sharedDirOrSkip(t *testing.T) string {
	t.Helper()
	dir := testenv.SharedDir()
	if dir == "" {
		t.Skip("../shared not found: KubeRay reference CRDs are only available in the development workspace")
	}
	return dir
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func loadCRD(t *testing.T, path string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading CRD: %v", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(data, crd); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	return crd
}

func version(crd *apiextensionsv1.CustomResourceDefinition, name string) *apiextensionsv1.CustomResourceDefinitionVersion {
	for i := range crd.Spec.Versions {
		if crd.Spec.Versions[i].Name == name {
			return &crd.Spec.Versions[i]
		}
	}
	return nil
}

// flatten maps every property path of a schema to its node. Object properties are ".name",
// array items "[]" and map values (additionalProperties) "{}"; the root is "".
func flatten(s *apiextensionsv1.JSONSchemaProps) map[string]*apiextensionsv1.JSONSchemaProps {
	out := map[string]*apiextensionsv1.JSONSchemaProps{}
	var walk func(path string, s *apiextensionsv1.JSONSchemaProps)
	walk = func(path string, s *apiextensionsv1.JSONSchemaProps) {
		out[path] = s
		for name := range s.Properties {
			p := s.Properties[name]
			walk(path+"."+name, &p)
		}
		if s.Items != nil && s.Items.Schema != nil {
			walk(path+"[]", s.Items.Schema)
		}
		if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
			walk(path+"{}", s.AdditionalProperties.Schema)
		}
	}
	walk("", s)
	return out
}

func defaultString(s *apiextensionsv1.JSONSchemaProps) string {
	if s.Default == nil {
		return "<none>"
	}
	return string(s.Default.Raw)
}

func missingValues(want, got []string) []string {
	have := map[string]bool{}
	for _, v := range got {
		have[v] = true
	}
	var missing []string
	for _, v := range want {
		if !have[v] {
			missing = append(missing, v)
		}
	}
	return missing
}

func enumValues(s *apiextensionsv1.JSONSchemaProps) []string {
	var vals []string
	for _, e := range s.Enum {
		vals = append(vals, string(e.Raw))
	}
	sort.Strings(vals)
	return vals
}

func requiredSet(s *apiextensionsv1.JSONSchemaProps) []string {
	r := slices.Clone(s.Required)
	sort.Strings(r)
	return r
}

// compareSchemas returns one line per incompatibility between KubeRay's schema (ref) and ours,
// plus the number of property paths compared. Extra paths and extra validation in ours are fine
// (our schema is a superset); what is not fine is a missing path, a different JSON type or format,
// a different default, an enum that lacks a value KubeRay accepts, or different required fields.
func compareSchemas(ref, ours *apiextensionsv1.JSONSchemaProps) (problems []string, compared int) {
	refPaths, ourPaths := flatten(ref), flatten(ours)
	for path, r := range refPaths {
		compared++
		display := path
		if display == "" {
			display = "<root>"
		}
		o, ok := ourPaths[path]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: missing (KubeRay type %q)", display, r.Type))
			continue
		}
		check := func(what string, want, got any) {
			if !reflect.DeepEqual(want, got) {
				problems = append(problems, fmt.Sprintf("%s: %s is %v, KubeRay has %v", display, what, got, want))
			}
		}
		check("type", r.Type, o.Type)
		check("format", r.Format, o.Format)
		check("x-kubernetes-int-or-string", r.XIntOrString, o.XIntOrString)
		check("x-kubernetes-preserve-unknown-fields", r.XPreserveUnknownFields, o.XPreserveUnknownFields)
		check("x-kubernetes-embedded-resource", r.XEmbeddedResource, o.XEmbeddedResource)
		check("nullable", r.Nullable, o.Nullable)
		check("default", defaultString(r), defaultString(o))
		check("required", requiredSet(r), requiredSet(o))
		if len(r.Enum) > 0 {
			// Our enum may add values (e.g. upgradeStrategy RollingUpdate) but must keep every
			// value KubeRay accepts, or some KubeRay YAML would be rejected.
			if missing := missingValues(enumValues(r), enumValues(o)); len(missing) > 0 {
				problems = append(problems, fmt.Sprintf("%s: enum lacks %v that KubeRay accepts", display, missing))
			}
		}
	}
	sort.Strings(problems)
	return problems, compared
}

// TestSchemaCompatibleWithKubeRay checks that every property path of KubeRay's ray.io/v1 schema
// exists in our generated CRD with the same type, format, default, enum and required fields, so
// that any object valid for KubeRay has the same shape here.
func TestSchemaCompatibleWithKubeRay(t *testing.T) {
	shared := sharedDirOrSkip(t)
	root := repoRoot(t)
	for _, k := range kinds {
		t.Run(k.kind, func(t *testing.T) {
			ref := loadCRD(t, filepath.Join(shared, "kuberay", "crds", k.file))
			ours := loadCRD(t, filepath.Join(root, "config", "crd", "bases", k.file))

			var problems []string
			check := func(what string, want, got any) {
				if !reflect.DeepEqual(want, got) {
					problems = append(problems, fmt.Sprintf("CRD %s is %v, KubeRay has %v", what, got, want))
				}
			}
			check("group", ref.Spec.Group, ours.Spec.Group)
			check("names.kind", ref.Spec.Names.Kind, ours.Spec.Names.Kind)
			check("names.listKind", ref.Spec.Names.ListKind, ours.Spec.Names.ListKind)
			check("names.plural", ref.Spec.Names.Plural, ours.Spec.Names.Plural)
			check("names.singular", ref.Spec.Names.Singular, ours.Spec.Names.Singular)
			check("names.shortNames", ref.Spec.Names.ShortNames, ours.Spec.Names.ShortNames)
			check("names.categories", ref.Spec.Names.Categories, ours.Spec.Names.Categories)
			check("scope", ref.Spec.Scope, ours.Spec.Scope)

			refV1, ourV1 := version(ref, "v1"), version(ours, "v1")
			if refV1 == nil {
				t.Fatalf("KubeRay CRD %s has no v1 version", k.file)
			}
			if ourV1 == nil {
				t.Fatalf("our CRD %s has no v1 version", k.file)
			}
			check("v1 served", true, ourV1.Served)
			check("v1 storage", true, ourV1.Storage)
			check("v1 status subresource", refV1.Subresources != nil && refV1.Subresources.Status != nil,
				ourV1.Subresources != nil && ourV1.Subresources.Status != nil)
			// Every column KubeRay prints must be printable by us too (we may print more).
			for _, col := range refV1.AdditionalPrinterColumns {
				found := false
				for _, c := range ourV1.AdditionalPrinterColumns {
					found = found || (c.Name == col.Name && c.JSONPath == col.JSONPath)
				}
				if !found {
					problems = append(problems, fmt.Sprintf("printer column %q (%s) missing", col.Name, col.JSONPath))
				}
			}

			schemaProblems, compared := compareSchemas(refV1.Schema.OpenAPIV3Schema, ourV1.Schema.OpenAPIV3Schema)
			problems = append(problems, schemaProblems...)
			t.Logf("%s: compared %d property paths of KubeRay's v1 schema", k.kind, compared)
			// Guard against a vacuous pass (e.g. an empty or truncated reference file).
			if compared < 1000 {
				problems = append(problems, fmt.Sprintf("only %d property paths compared; the reference schema looks truncated", compared))
			}
			if len(problems) > 0 {
				t.Errorf("%d incompatibilities with KubeRay's %s schema:\n  %s", len(problems), k.kind, strings.Join(problems, "\n  "))
			}

			// Tightened enums are allowed (extra validation) but listed for the record.
			refPaths := flatten(refV1.Schema.OpenAPIV3Schema)
			for path, o := range flatten(ourV1.Schema.OpenAPIV3Schema) {
				if r, ok := refPaths[path]; ok && len(r.Enum) == 0 && len(o.Enum) > 0 {
					t.Logf("%s%s: enum [%s] added (KubeRay validates it in the controller)", k.kind, path, strings.Join(enumValues(o), ", "))
				}
			}
		})
	}
}

// TestCompareSchemasDetectsDifferences proves the comparison can fail: it mutates a copy of our
// schema the ways an incompatible change would, and expects each to be reported.
func TestCompareSchemasDetectsDifferences(t *testing.T) {
	root := repoRoot(t)
	crd := loadCRD(t, filepath.Join(root, "config", "crd", "bases", "ray.io_rayclusters.yaml"))
	ref := version(crd, "v1").Schema.OpenAPIV3Schema

	if problems, _ := compareSchemas(ref, ref); len(problems) != 0 {
		t.Fatalf("a schema compared with itself reported problems: %v", problems)
	}

	mutate := func(f func(spec *apiextensionsv1.JSONSchemaProps)) *apiextensionsv1.JSONSchemaProps {
		c := ref.DeepCopy()
		spec := c.Properties["spec"]
		f(&spec)
		c.Properties["spec"] = spec
		return c
	}
	cases := map[string]struct {
		ours *apiextensionsv1.JSONSchemaProps
		want string
	}{
		"missing property": {
			ours: mutate(func(s *apiextensionsv1.JSONSchemaProps) { delete(s.Properties, "rayVersion") }),
			want: ".spec.rayVersion: missing",
		},
		"missing nested array item property": {
			ours: mutate(func(s *apiextensionsv1.JSONSchemaProps) {
				wg := s.Properties["workerGroupSpecs"]
				item := wg.Items.Schema.DeepCopy()
				delete(item.Properties, "numOfHosts")
				wg.Items = &apiextensionsv1.JSONSchemaPropsOrArray{Schema: item}
				s.Properties["workerGroupSpecs"] = wg
			}),
			want: ".spec.workerGroupSpecs[].numOfHosts: missing",
		},
		"different type": {
			ours: mutate(func(s *apiextensionsv1.JSONSchemaProps) {
				p := s.Properties["enableInTreeAutoscaling"]
				p.Type = "string"
				s.Properties["enableInTreeAutoscaling"] = p
			}),
			want: ".spec.enableInTreeAutoscaling: type is string, KubeRay has boolean",
		},
		"map value type": {
			ours: mutate(func(s *apiextensionsv1.JSONSchemaProps) {
				p := s.Properties["headServiceAnnotations"]
				p.AdditionalProperties = &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &apiextensionsv1.JSONSchemaProps{Type: "integer"}}
				s.Properties["headServiceAnnotations"] = p
			}),
			want: ".spec.headServiceAnnotations{}: type is integer, KubeRay has string",
		},
		"newly required": {
			ours: mutate(func(s *apiextensionsv1.JSONSchemaProps) { s.Required = append(s.Required, "rayVersion") }),
			want: ".spec: required is [headGroupSpec rayVersion], KubeRay has [headGroupSpec]",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			problems, _ := compareSchemas(ref, tc.ours)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, tc.want) }) {
				t.Errorf("want a problem starting with %q, got %v", tc.want, problems)
			}
		})
	}
}
