package domain

import (
	"strings"
	"testing"
)

func TestRequireDeps(t *testing.T) {
	var nilPtr *strings.Builder
	var nilFunc func()
	if err := RequireDeps("svc", map[string]any{"A": &strings.Builder{}, "B": func() {}, "C": 0}); err != nil {
		t.Fatalf("all present: %v", err)
	}
	err := RequireDeps("svc", map[string]any{"Pool": nilPtr, "Log": nil, "Fn": nilFunc, "Ok": &strings.Builder{}})
	if err == nil || err.Error() != "svc: missing dependencies: Fn, Log, Pool" {
		t.Fatalf("err = %v", err)
	}
}
