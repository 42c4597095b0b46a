package config

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// Every RayService sample's serveConfigV2 must pass validation (the
// operator PUTs it as JSON).
func TestSampleServeConfigsAreValid(t *testing.T) {
	files, err := filepath.Glob("../../../config/samples/ray-service.*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no RayService samples found: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rs struct {
			Spec struct {
				ServeConfigV2 string `json:"serveConfigV2"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(raw, &rs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		body, err := yaml.YAMLToJSON([]byte(rs.Spec.ServeConfigV2))
		if err != nil {
			t.Fatalf("%s: serveConfigV2: %v", f, err)
		}
		if _, err := Parse(body); err != nil {
			t.Errorf("%s: serveConfigV2 is invalid: %v", f, err)
		}
	}
}
