package main

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// TestLambdaZips builds the worker's Lambda zips as `make dist` does and checks what Lambda's
// provided.al2023 runtime needs: one entry, `bootstrap`, executable, a static ELF binary for
// the zip's architecture.
func TestLambdaZips(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := t.TempDir()
	want := map[string]elf.Machine{"arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64}
	for _, a := range lambdaArchs {
		out, err := lambdaZip(ctx, a.goarch, dir)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(out) != "bca-worker-lambda-"+a.goarch+".zip" {
			t.Errorf("zip named %s", out)
		}
		zr, err := zip.OpenReader(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(zr.File) != 1 || zr.File[0].Name != "bootstrap" {
			names := []string{}
			for _, f := range zr.File {
				names = append(names, f.Name)
			}
			t.Fatalf("%s holds %v, want only bootstrap", out, names)
		}
		f := zr.File[0]
		if mode := f.Mode(); mode.Perm()&0o111 != 0o111 || !mode.IsRegular() {
			t.Errorf("%s: bootstrap mode %v, want an executable regular file", out, mode)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		zr.Close()
		bin, err := elf.NewFile(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: bootstrap is not ELF: %v", out, err)
		}
		if bin.Machine != want[a.goarch] || bin.Type != elf.ET_EXEC {
			t.Errorf("%s: bootstrap is %v %v, want %v ET_EXEC", out, bin.Machine, bin.Type, want[a.goarch])
		}
		for _, p := range bin.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s: bootstrap is dynamically linked (%v)", out, p.Type)
			}
		}
		if bin.Section(".symtab") != nil {
			t.Errorf("%s: bootstrap keeps its symbol table (want -s -w)", out)
		}
	}
}
