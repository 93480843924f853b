package main

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// module is the import path prefix of the commands that dist builds.
const module = "github.com/bca-app/backend/cmd/"

// lambdaArchs are the architectures of the worker's Lambda zips: Go's name and Lambda's.
var lambdaArchs = []struct{ goarch, lambda string }{{"arm64", "arm64"}, {"amd64", "x86_64"}}

// dist builds what a deployment ships into dir (default ./dist): static binaries of bca-api,
// bca-worker and bcactl for this machine's architecture (GOOS/GOARCH in the environment
// override it; the container build uses the same flags), and the worker's Lambda zips,
// bca-worker-lambda-arm64.zip and bca-worker-lambda-amd64.zip, each holding the executable
// `bootstrap` that the provided.al2023 runtime starts. It needs only the Go toolchain (the zips
// are written with archive/zip).
func dist(ctx context.Context, args []string) error {
	dir := "dist"
	if len(args) > 1 {
		return errUsage
	}
	if len(args) == 1 {
		dir = args[0]
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	goos, goarch := envOr("GOOS", runtime.GOOS), envOr("GOARCH", runtime.GOARCH)
	for _, cmd := range []string{"bca-api", "bca-worker", "bcactl"} {
		out := filepath.Join(dir, cmd)
		if err := staticBuild(ctx, goos, goarch, module+cmd, out); err != nil {
			return err
		}
		fmt.Println(out)
	}
	for _, a := range lambdaArchs {
		out, err := lambdaZip(ctx, a.goarch, dir)
		if err != nil {
			return err
		}
		fmt.Printf("%s (Lambda: Runtime provided.al2023, Handler bootstrap, Architectures [%s])\n", out, a.lambda)
	}
	return nil
}

// staticBuild builds pkg as a static binary without build paths or symbols.
func staticBuild(ctx context.Context, goos, goarch, pkg, out string, tags ...string) error {
	args := []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out}
	for _, t := range tags {
		args = append(args, "-tags", t)
	}
	cmd := exec.CommandContext(ctx, goTool(), append(args, pkg)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build %s for %s/%s: %w", pkg, goos, goarch, err)
	}
	return nil
}

// goTool is the go command that runs bcactl under `go run` (GOROOT is set then), else the
// one on PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// lambdaZip builds the worker for linux/goarch as `bootstrap` and writes
// dir/bca-worker-lambda-<goarch>.zip holding only it, executable. The lambda.norpc tag leaves
// out the RPC mode that only the retired go1.x runtime used.
func lambdaZip(ctx context.Context, goarch, dir string) (string, error) {
	tmp, err := os.MkdirTemp("", "bca-lambda-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	bootstrap := filepath.Join(tmp, "bootstrap")
	if err := staticBuild(ctx, "linux", goarch, module+"bca-worker", bootstrap, "lambda.norpc"); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "bca-worker-lambda-"+goarch+".zip")
	if err := writeZip(out, "bootstrap", bootstrap); err != nil {
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	return out, nil
}

// writeZip writes a zip at out holding the file src as name, mode 0755, with a fixed time so
// the same binary gives the same zip.
func writeZip(out, name, src string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(out + ".tmp")
		}
	}()
	zw := zip.NewWriter(f)
	h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, in); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}
