package operatorenv

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBools(t *testing.T) {
	a, b := true, false
	err := Bools(env(map[string]string{"A": "false", "B": ""}), map[string]*bool{"A": &a, "B": &b})
	if err != nil || a != false || b != false {
		t.Fatalf("a=%v b=%v err=%v; want A parsed, B left at its default", a, b, err)
	}
	err = Bools(env(map[string]string{"A": "yes please", "B": "maybe"}), map[string]*bool{"A": &a, "B": &b})
	if err == nil || !strings.Contains(err.Error(), `A="yes please"`) || !strings.Contains(err.Error(), `B="maybe"`) {
		t.Fatalf("err = %v, want both variables named", err)
	}
}

func TestSeconds(t *testing.T) {
	d := time.Minute
	if err := Seconds(env(map[string]string{"T": "30"}), map[string]*time.Duration{"T": &d}); err != nil || d != 30*time.Second {
		t.Fatalf("d=%v err=%v", d, err)
	}
	for _, bad := range []string{"0", "-1", "1.5", "ten"} {
		if err := Seconds(env(map[string]string{"T": bad}), map[string]*time.Duration{"T": &d}); err == nil || !strings.Contains(err.Error(), "T=") {
			t.Errorf("T=%q: err = %v, want one naming T", bad, err)
		}
	}
	if d != 30*time.Second {
		t.Errorf("a rejected value changed the setting to %v", d)
	}
}
