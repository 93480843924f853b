package e2e

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// caller is who a fuzz target posts as.
type caller int

const (
	anonymousCaller caller = iota
	signedIn
	actingAsProfile
)

// fuzzWrite posts body to path as who and holds the answer to the bad-input rules: never a 5xx,
// refusals are problem documents, a refusal changes no table, and a 201 wrote what created
// expects.
func fuzzWrite(f *testing.F, path string, who caller, seeds []string, created func(before, after map[string]int) bool) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	e := fuzzEnv(f)
	var headers []string
	if who != anonymousCaller {
		u := e.SignUp(f)
		headers = []string{"Authorization", "Bearer " + u.Token()}
		if who == actingAsProfile {
			headers = append(headers, "X-Profile-Id", strconv.FormatInt(e.FirstProfile(f, u), 10))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		env := e.reportingTo(t)
		before := env.Snapshot(t)
		status, header, resp := env.Raw(t, "POST", path, "application/json", body, headers...)
		checkAnswer(t, body, status, header, resp)
		after := env.Snapshot(t)
		switch {
		case status == http.StatusCreated:
			if !created(before, after) {
				t.Fatalf("201 for body %q without the expected rows: %v → %v", body, before, after)
			}
		case status >= 300:
			for table, n := range before {
				if after[table] != n {
					t.Fatalf("status %d changed table %s from %d to %d rows for body %q", status, table, n, after[table], body)
				}
			}
		default:
			t.Fatalf("unexpected status %d for body %q: %s", status, body, resp)
		}
	})
}

func FuzzProfileData(f *testing.F) {
	fuzzWrite(f, "/api/v1/profiles", signedIn, []string{
		`{"name":"P","data":{"phone":{"index":0,"value":{"mobile":{"index":0,"value":"+82 10"}}}}}`,
		`{"name":"P","data":{"email":{"index":0,"value":{"a":{"index":2,"value":"x"},"b":{"index":1,"value":"y"}}},"custom":{"index":9,"value":{}}}}`,
		`{"name":"P","data":{"phone":{"index":0,"value":{"m":{"index":0,"value":5}}}}}`,
		`{"name":"P","data":{"phone":{"index":0.5,"value":{}}}}`,
		`{"name":"P","data":{"phone":{"index":0}}}`,
		`{"name":"P","data":{"phone":{"index":0,"value":{},"extra":1}}}`,
		`{"name":"P","data":"{\"phone\":{}}"}`,
		`{"name":"P","data":[]}`,
		`{"name":"P","data":null}`,
		`{"name":"P","data":{"":{"index":0,"value":{"":{"index":0,"value":""}}}}}`,
		`{"name":"P","data":{"x":{"index":0,"value":{"y":{"index":0,"value":"` + strings.Repeat("v", 2000) + `"}}}}}`,
		`{"name":"P","private":"no"}`,
		`{"name":"\u0000"}`,
		`{"name":" "}`,
	}, func(before, after map[string]int) bool {
		return after["profiles"] == before["profiles"]+1 && after["sync_states"] >= 1
	})
}

func FuzzCardBody(f *testing.F) {
	fuzzWrite(f, "/api/v1/cards", actingAsProfile, []string{
		`{"name":"Card"}`,
		`{"name":"Card","data":{"title":"CEO","nested":{"a":[1,2,{"b":null}]}},"private":true}`,
		`{"name":"Card","preview_file_id":1}`,
		`{"name":"Card","preview_file_id":-1}`,
		`{"name":"Card","preview_file_id":9223372036854775807}`,
		`{"name":"Card","preview_file_id":1e30}`,
		`{"name":"Card","data":"x"}`,
		`{"name":"","data":{}}`,
		`{"data":{}}`,
		`{"name":"Card","data":{"k":"\ud800"}}`,
		`{"name":"Card","unknown":true}`,
		`{"name":"Card","data":{"deep":` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `}}`,
	}, func(before, after map[string]int) bool {
		return after["cards"] == before["cards"]+1
	})
}
