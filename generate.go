// Package backend holds the API contract (openapi.yaml) and the code generation entry point.
//
// Everything under gen/ is produced by `go generate ./...` from openapi.yaml and queries/;
// it is committed and never edited by hand.
package backend

import _ "embed"

//go:generate go tool oapi-codegen -config oapi-codegen.server.yaml openapi.yaml
//go:generate go tool oapi-codegen -config oapi-codegen.client.yaml openapi.yaml
//go:generate go tool sqlc generate -f sqlc.yaml

// OpenAPISpec is the contract as written, served at /openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPISpec []byte
