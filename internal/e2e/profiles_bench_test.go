package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/gen/db"
)

// benchGet returns a worker factory issuing GET url with the headers.
func benchGet(url string, headers ...string) func() func() error {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return func() func() error {
		return func() error {
			req, _ := http.NewRequest("GET", url, nil)
			for i := 0; i+1 < len(headers); i += 2 {
				req.Header.Set(headers[i], headers[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}
	}
}

// BenchmarkGetProfile measures getProfile through the whole stack (authentication, blacklist and
// session check, spec validation, visibility rules) side by side with a minimal net/http + pgx
// handler running the same query; the ratio is the cost of everything around the query.
func BenchmarkGetProfile(b *testing.B) {
	e := benchEnv(b)
	viewer, owner := e.SignUp(b), e.SignUp(b)
	target := e.NewProfile(b, owner, map[string]any{"name": "Bench target", "private": false,
		"data": map[string]any{"phone": map[string]any{"index": 0, "value": map[string]any{"m": map[string]any{"index": 0, "value": "+82"}}}}})
	acting := strconv.FormatInt(e.FirstProfile(b, viewer), 10)

	b.Run("api", func(b *testing.B) {
		measureParallel(b, "req/s", benchGet(fmt.Sprintf("%s/api/v1/profiles/%d", e.Server.URL, target.Id),
			"Authorization", "Bearer "+viewer.Token(), "X-Profile-Id", acting))
	})
	b.Run("baseline", func(b *testing.B) {
		q := db.New(e.Server.App.Pool)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/profiles/"), 10, 64)
			if err != nil {
				http.Error(w, "bad id", http.StatusBadRequest)
				return
			}
			acting, _ := strconv.ParseInt(r.Header.Get("X-Profile-Id"), 10, 64)
			row, err := q.GetProfileView(r.Context(), db.GetProfileViewParams{ProfileID: id, ViewerProfileID: acting})
			if err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(row.Profile)
		}))
		b.Cleanup(srv.Close)
		measureParallel(b, "req/s", benchGet(fmt.Sprintf("%s/profiles/%d", srv.URL, target.Id), "X-Profile-Id", acting))
	})
}

// BenchmarkSetRelation measures setRelation writes (relation upsert plus the sync outbox bump of
// both owners in one transaction); each goroutine follows its own set of targets.
func BenchmarkSetRelation(b *testing.B) {
	e := benchEnv(b)
	owner := e.SignUp(b)
	var targets []int64
	for i := range 16 {
		targets = append(targets, e.NewProfile(b, owner, map[string]any{"name": fmt.Sprintf("t%d", i), "private": false}).Id)
	}
	var next atomic.Int64
	measureParallel(b, "req/s", func() func() error {
		u := e.SignUp(b)
		acting := e.FirstProfile(b, u)
		c := benchClient(b, e, u.Token())
		statuses := []string{"FOLLOW", "HIDE"}
		i := int(next.Add(1))
		return func() error {
			i++
			body := strings.NewReader(`{"status":"` + statuses[i%2] + `"}`)
			resp, err := c.SetRelationWithBody(context.Background(), targets[i%len(targets)], &apiclient.SetRelationParams{XProfileId: acting}, "application/json", body)
			return okStatus(resp, err, http.StatusOK, http.StatusConflict)
		}
	})
}

// BenchmarkSubscribeCard measures subscribe/unsubscribe writes of saved cards.
func BenchmarkSubscribeCard(b *testing.B) {
	e := benchEnv(b)
	owner := e.SignUp(b)
	shop := e.NewProfile(b, owner, map[string]any{"name": "Shop", "private": false})
	var cards []int64
	for i := range 16 {
		cards = append(cards, e.NewCard(b, owner, shop.Id, map[string]any{"name": fmt.Sprintf("c%d", i)}).Id)
	}
	measureParallel(b, "req/s", func() func() error {
		u := e.SignUp(b)
		acting := e.FirstProfile(b, u)
		c := benchClient(b, e, u.Token())
		i := 0
		return func() error {
			i++
			card := cards[(i/2)%len(cards)]
			if i%2 == 0 {
				resp, err := c.UnsubscribeCard(context.Background(), card, &apiclient.UnsubscribeCardParams{XProfileId: acting})
				return okStatus(resp, err, http.StatusNoContent)
			}
			resp, err := c.SubscribeCardWithBody(context.Background(), card, &apiclient.SubscribeCardParams{XProfileId: acting}, "application/json", strings.NewReader(`{}`))
			return okStatus(resp, err, http.StatusOK)
		}
	})
}

func okStatus(resp *http.Response, err error, want ...int) error {
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	return fmt.Errorf("status %d", resp.StatusCode)
}
