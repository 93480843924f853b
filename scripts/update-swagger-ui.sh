#!/usr/bin/env bash
# Vendors the swagger-ui-dist files that internal/docs embeds, so the API docs
# work without reaching a CDN. Run from anywhere; re-run after bumping VERSION.
#
#   scripts/update-swagger-ui.sh            # pinned version below
#   SWAGGER_UI_VERSION=5.x.y scripts/update-swagger-ui.sh
set -euo pipefail

# Pinned so every checkout embeds identical bytes; bump deliberately.
VERSION="${SWAGGER_UI_VERSION:-5.35.0}"

# Only what the page loads, plus the license texts we must ship with it
# (Apache-2.0 LICENSE/NOTICE and the third-party notices webpack moved out of
# the minified bundles). Source maps and the other bundles are left out.
FILES=(
  swagger-ui-bundle.js
  swagger-ui-standalone-preset.js
  swagger-ui.css
  favicon-32x32.png
  favicon-16x16.png
  LICENSE
  NOTICE
  swagger-ui-bundle.js.LICENSE.txt
  swagger-ui-standalone-preset.js.LICENSE.txt
)

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo_root/internal/docs/assets"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# npm pack verifies the tarball against the registry's integrity hash.
(cd "$tmp" && npm pack --silent "swagger-ui-dist@$VERSION" >/dev/null)
tarball=("$tmp"/swagger-ui-dist-*.tgz)
tar -xzf "${tarball[0]}" -C "$tmp" "${FILES[@]/#/package/}"

mkdir -p "$dest"
for f in "${FILES[@]}"; do
  cp "$tmp/package/$f" "$dest/$f"
done

# The .map files are not shipped; drop the references so browsers with dev
# tools open do not request them (404 noise, and a CSP report if enabled).
for f in swagger-ui-bundle.js swagger-ui-standalone-preset.js swagger-ui.css; do
  sed -i -E '/^[[:space:]]*(\/\/|\/\*)[#@] sourceMappingURL=/d' "$dest/$f"
done

printf '%s\n' "$VERSION" >"$dest/VERSION"

echo "swagger-ui-dist $VERSION -> ${dest#"$repo_root"/} ($(du -cb "${FILES[@]/#/$dest/}" | tail -1 | cut -f1) bytes)"
