package domain

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// RequireDeps is how every service constructor refuses to start without what it needs: it
// names each nil entry of deps (field name → value; a nil pointer, func, map or interface
// counts as missing) in one error, so a wiring mistake fails at start, not on the first request.
func RequireDeps(service string, deps map[string]any) error {
	var missing []string
	for name, v := range deps {
		if isNil(v) {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	return fmt.Errorf("%s: missing dependencies: %s", service, strings.Join(missing, ", "))
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch r := reflect.ValueOf(v); r.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Interface, reflect.Chan, reflect.Slice:
		return r.IsNil()
	}
	return false
}
