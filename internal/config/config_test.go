package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func lookup(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func valid() map[string]string {
	return map[string]string{
		"DATABASE_URL": "postgres://localhost/bca",
		"REDIS_URL":    "redis://localhost:6379/0",
		"SECRET_KEY":   strings.Repeat("k", 32),
	}
}

func TestLocalDefaults(t *testing.T) {
	c, err := FromLookup(lookup(valid()))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.AWS.S3Bucket != "" || c.AWS.TaskSQSURL != "" || !c.EmbeddedWorker {
		t.Fatalf("local defaults: %+v", c)
	}
	if c.VerificationRequired() {
		t.Fatal("verification is off by default")
	}
}

func TestEveryProblemIsNamed(t *testing.T) {
	cases := map[string]map[string]string{
		"DATABASE_URL":         {"DATABASE_URL": ""},
		"REDIS_URL":            {"REDIS_URL": ""},
		"SECRET_KEY":           {"SECRET_KEY": "short"},
		"ACCESS_TOKEN_TTL":     {"ACCESS_TOKEN_TTL": "soon"},
		"MAIL_ENABLE":          {"MAIL_ENABLE": "maybe"},
		"MAX_UPLOAD_BYTES":     {"MAX_UPLOAD_BYTES": "ten"},
		"HTTP_ADDR":            {"HTTP_ADDR": "8080"},
		"PUBLIC_BASE_URL":      {"PUBLIC_BASE_URL": "ftp://x"},
		"AWS_ENDPOINT_URL":     {"AWS_ENDPOINT_URL": "::"},
		"LOG_LEVEL":            {"LOG_LEVEL": "loud"},
		"RATE_LIMIT_*":         {"RATE_LIMIT_PER_ADDRESS": "0"},
		"PASSWORD_HASH_MEMORY": {"PASSWORD_HASH_MEMORY_KIB": "-1"},
	}
	for name, override := range cases {
		vars := valid()
		for k, v := range override {
			vars[k] = v
		}
		_, err := FromLookup(lookup(vars))
		if err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(name, "*")) {
			t.Errorf("%s: error %v does not name the variable", name, err)
		}
	}
	// Several problems are reported together.
	_, err := FromLookup(lookup(map[string]string{}))
	for _, name := range []string{"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("missing everything: %v does not name %s", err, name)
		}
	}
}

func TestDotenv(t *testing.T) {
	path := filepath.Join(t.TempDir(), ".env")
	content := "# local settings\nexport DATABASE_URL=postgres://file/bca\nREDIS_URL='redis://file:6379'\nSECRET_KEY=\"" + strings.Repeat("s", 40) + "\"\nACCESS_TOKEN_TTL=30m\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_URL": "redis://env:6379"}
	c, err := Load(lookup(env), path)
	if err != nil {
		t.Fatal(err)
	}
	if c.DatabaseURL != "postgres://file/bca" || c.RedisURL != "redis://env:6379" || c.AccessTokenTTL != 30*time.Minute {
		t.Fatalf(".env read, real environment wins: %+v", c)
	}
	if _, err := Load(lookup(valid()), filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Fatalf("a missing .env is fine: %v", err)
	}
	if err := os.WriteFile(path, []byte("NOT A PAIR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(lookup(valid()), path); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Fatalf("malformed line is reported with its number: %v", err)
	}
}

// TestSyncPipelineSettings: the worker's own defaults (address, no migrations at start), and
// every sync setting is validated with its name.
func TestSyncPipelineSettings(t *testing.T) {
	env := valid()
	api, err := FromLookup(lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	w, err := LoadWorker(lookup(env), "")
	if err != nil {
		t.Fatal(err)
	}
	if !api.RunMigrations || w.RunMigrations || w.EmbeddedWorker || w.Sync.WorkerHTTPAddr == api.HTTPAddr {
		t.Fatalf("api migrates %v; worker migrates %v, embeds %v, listens on %s (API %s)",
			api.RunMigrations, w.RunMigrations, w.EmbeddedWorker, w.Sync.WorkerHTTPAddr, api.HTTPAddr)
	}
	if w.Sync.Visibility != 15*time.Second || w.Sync.ReceiveWait >= w.Sync.Visibility || w.Sync.LagThreshold > 10*time.Second {
		t.Fatalf("sync defaults: %+v", w.Sync)
	}
	env["MIGRATE_ON_START"] = "true"
	if w, err := LoadWorker(lookup(env), ""); err != nil || !w.RunMigrations {
		t.Fatalf("MIGRATE_ON_START=true for the worker: %v, %v", w.RunMigrations, err)
	}
	for name, value := range map[string]string{
		"WORKER_HTTP_ADDR": "8081", "SYNC_WORKER_CONCURRENCY": "0", "SYNC_VISIBILITY": "1500ms",
		"SYNC_RECEIVE_WAIT": "30s", "SYNC_LOCK_TTL": "0s", "SYNC_SWEEP_INTERVAL": "2h", "SYNC_LAG_THRESHOLD": "0s",
		"SYNC_RESEND_INTERVAL": "1h", "SYNC_SEND_BUFFER": "1", "SYNC_SEND_CONCURRENCY": "100", "SYNC_SEND_TIMEOUT": "1ms",
	} {
		vars := valid()
		vars[name] = value
		if _, err := FromLookup(lookup(vars)); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v does not name the variable", name, value, err)
		}
	}
	vars := valid()
	vars["SYNC_VISIBILITY"], vars["SYNC_RECEIVE_WAIT"] = "5s", "5s"
	if _, err := FromLookup(lookup(vars)); err == nil || !strings.Contains(err.Error(), "shorter than SYNC_VISIBILITY") {
		t.Errorf("a long-poll as long as the visibility: %v", err)
	}
}

// An unset PUBLIC_BASE_URL follows HTTP_ADDR, so `make run` on another port links to that port;
// a set one wins.
func TestPublicBaseURLFollowsHTTPAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080",
		"127.0.0.1:9191": "http://127.0.0.1:9191",
		":9192":          "http://127.0.0.1:9192",
		"0.0.0.0:9193":   "http://127.0.0.1:9193",
		"[::]:9194":      "http://127.0.0.1:9194",
		"[::1]:9195":     "http://[::1]:9195",
		"localhost:9196": "http://localhost:9196",
	} {
		vars := valid()
		vars["HTTP_ADDR"] = addr
		c, err := FromLookup(lookup(vars))
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if c.PublicBaseURL != want {
			t.Errorf("HTTP_ADDR=%s: PUBLIC_BASE_URL %q, want %q", addr, c.PublicBaseURL, want)
		}
	}
	vars := valid()
	vars["HTTP_ADDR"] = "127.0.0.1:9197"
	vars["PUBLIC_BASE_URL"] = "https://bca.example"
	c, err := FromLookup(lookup(vars))
	if err != nil {
		t.Fatal(err)
	}
	if c.PublicBaseURL != "https://bca.example" {
		t.Fatalf("explicit PUBLIC_BASE_URL replaced: %q", c.PublicBaseURL)
	}
}

// TestRedisURLForms: REDIS_URL names one node or a Redis Cluster; deploy/bca.yaml gives the
// processes rediss+cluster://<configuration endpoint>:<port>.
func TestRedisURLForms(t *testing.T) {
	for _, u := range []string{
		"redis://localhost:6379/0",
		"rediss://user:pw@cache.example:6380",
		"redis+cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379",
		"rediss+cluster://clustercfg.bca-cache.abc123.euc1.cache.amazonaws.com:6379",
	} {
		vars := valid()
		vars["REDIS_URL"] = u
		if _, err := FromLookup(lookup(vars)); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	for _, u := range []string{"http://localhost:6379", "redis+cluster://10.0.0.1:6379/1", "redis+cluster://10.0.0.1"} {
		vars := valid()
		vars["REDIS_URL"] = u
		if _, err := FromLookup(lookup(vars)); err == nil || !strings.Contains(err.Error(), "REDIS_URL") {
			t.Errorf("%s: error %v does not name REDIS_URL", u, err)
		}
	}
}

// TestCORSWildcardIsRefused: the API allows credentials (the refresh cookie), so
// CORS_ORIGINS=* would let every web site act as a signed-in user; the configuration is refused
// at start, also when * hides among real origins. A list of origins is accepted.
func TestCORSWildcardIsRefused(t *testing.T) {
	for _, v := range []string{"*", "https://app.example, *"} {
		vars := valid()
		vars["CORS_ORIGINS"] = v
		_, err := FromLookup(lookup(vars))
		if err == nil || !strings.Contains(err.Error(), "CORS_ORIGINS") {
			t.Errorf("CORS_ORIGINS=%q: error %v, want a refusal naming CORS_ORIGINS", v, err)
		}
	}
	vars := valid()
	vars["CORS_ORIGINS"] = "https://app.example,https://admin.example"
	c, err := FromLookup(lookup(vars))
	if err != nil {
		t.Fatalf("a list of origins: %v", err)
	}
	if len(c.CORSOrigins) != 2 {
		t.Fatalf("origins %v", c.CORSOrigins)
	}
}
