package serve_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// sklearnPython finds the interpreter for replicas that import sklearn:
// RAYK8S_SERVE_PYTHON when set, else python3 on PATH, else Debian's
// /usr/bin/python3 (python3-sklearn installs there; a pyenv or python.org
// python3 earlier on PATH does not see it).
func sklearnPython() (string, []string) {
	candidates := []string{"python3", "/usr/bin/python3"}
	if p := os.Getenv("RAYK8S_SERVE_PYTHON"); p != "" {
		candidates = []string{p}
	}
	var tried []string
	for _, p := range candidates {
		if exec.Command(p, "-c", "import sklearn").Run() == nil {
			return p, nil
		}
		tried = append(tried, p)
	}
	return "", tried
}

// sampleServeConfig returns a RayService sample's serveConfigV2 as JSON
// with the working_dir moved to this checkout's python/examples and the
// cluster's HTTP port.
func (c *cluster) sampleServeConfig(t *testing.T, sample string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("../../../config/samples", sample))
	if err != nil {
		t.Fatal(err)
	}
	var rs struct {
		Spec struct {
			ServeConfigV2 string `json:"serveConfigV2"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &rs); err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON([]byte(rs.Spec.ServeConfigV2))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(js, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["http_options"] = map[string]any{"port": c.httpPort}
	for _, a := range cfg["applications"].([]any) {
		env, ok := a.(map[string]any)["runtime_env"].(map[string]any)
		if !ok {
			continue // a Go built-in
		}
		env["working_dir"] = strings.Replace(env["working_dir"].(string), "/opt/rayk8s/python", c.pythonDir, 1)
	}
	out, _ := json.Marshal(cfg)
	return string(out)
}

// The iris sample, deployed from config/samples as a RayService would, on
// replicas that train at construction and classify over HTTP.
func TestIrisSample(t *testing.T) {
	python, tried := sklearnPython()
	if python == "" {
		t.Skipf("scikit-learn is not importable by %v: install Debian's python3-sklearn (apt-get install python3-sklearn) "+
			"or set RAYK8S_SERVE_PYTHON to an interpreter that has it", tried)
	}
	t.Logf("replicas run %s", python)
	c := startCluster(t, "RAYK8S_SERVE_PYTHON="+python)
	c.mustPut(t, c.sampleServeConfig(t, "ray-service.iris.yaml"))
	replicas := c.waitRunning(t, "iris")["iris"].Deployments["IrisClassifier"].Replicas
	if len(replicas) != 2 {
		t.Fatalf("IrisClassifier has %d replicas, want 2", len(replicas))
	}
	// The head's proxy always serves; a worker's only with a replica on it
	// (Ray drains the others).
	proxies := []string{c.proxies[0]}
	for _, p := range c.proxies[1:] {
		for _, r := range replicas {
			if strings.HasPrefix(p, "http://"+r.NodeIP+":") {
				proxies = append(proxies, p)
				break
			}
		}
	}
	for _, p := range proxies {
		eventually(t, "proxy "+p+" to be healthy", 10*time.Second, func() bool {
			code, _ := c.do(t, "GET", p+"/-/healthz", "")
			return code == 200
		})
		cases := map[string]string{
			`[5.1, 3.5, 1.4, 0.2]`: "setosa",
			`[6.0, 2.7, 4.1, 1.0]`: "versicolor",
			`{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}`: "virginica",
		}
		for body, want := range cases {
			code, resp := c.do(t, "POST", p+"/iris", body)
			if code != 200 || jsonField(resp, "class") != want {
				t.Errorf("%s/iris %s = %d %s, want class %s", p, body, code, resp, want)
			}
		}
		for _, bad := range []string{`[1, 2, 3]`, `{"sepal_length": 1}`, `["a", "b", "c", "d"]`, `not json`} {
			if code, resp := c.do(t, "POST", p+"/iris", bad); code != 400 {
				t.Errorf("%s/iris %s = %d %s, want 400", p, bad, code, resp)
			}
		}
	}
	code, resp := c.do(t, "GET", c.proxies[0]+"/iris", "")
	var info struct {
		Classes  []string `json:"classes"`
		Accuracy float64  `json:"training_accuracy"`
	}
	if code != 200 || json.Unmarshal([]byte(resp), &info) != nil || len(info.Classes) != 3 || info.Accuracy < 0.9 {
		t.Errorf("GET /iris = %d %s, want the 3 classes and a training accuracy >= 0.9", code, resp)
	}
}
