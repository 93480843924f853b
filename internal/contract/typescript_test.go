package contract

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestTypeScriptClient generates a TypeScript client with openapi-typescript in its default
// settings and type-checks testdata/typescript/calls.ts (sign-up, create profile, create room,
// upload, a list page) against it with tsc. The npm project pins its packages in
// package-lock.json; `npm ci` installs them (from the npm registry on a fresh machine). Node and
// npm come from the machine; without them the test fails, it does not skip.
func TestTypeScriptClient(t *testing.T) {
	if testing.Short() {
		t.Skip("installs npm packages; not in -short runs")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "typescript"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"node", "npm", "npx"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed for the TypeScript contract test (install Node.js): %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NO_COLOR=1", "npm_config_fund=false", "npm_config_audit=false", "npm_config_update_notifier=false")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	// npm ci (a clean install exactly as locked) unless node_modules is already that install.
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err != nil || installed.ModTime().Before(lock.ModTime()) {
		run("npm", "ci", "--ignore-scripts")
	}
	if err := os.RemoveAll(filepath.Join(dir, "build")); err != nil {
		t.Fatal(err)
	}
	// Default settings: no flags beyond input and output.
	run("npx", "--no-install", "openapi-typescript", filepath.Join("..", "..", "..", "..", "openapi.yaml"), "-o", filepath.Join("build", "api.d.ts"))
	run("npx", "--no-install", "tsc", "-p", "tsconfig.json")
}
