// Package migrations embeds the goose migrations so the binaries can apply them at start.
package migrations

import "embed"

// FS holds every numbered migration file.
//
//go:embed *.sql
var FS embed.FS
