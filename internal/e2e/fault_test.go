package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/apiclient"
	"github.com/bca-app/backend/internal/config"
	"github.com/bca-app/backend/internal/testenv"
)

// faultBound is the longest any request may take while a dependency is stopped or hung: the
// deadlines on every Redis and PostgreSQL call must turn a fault into a quick answer.
const faultBound = time.Second

// faultOutcome is one request made under load.
type faultOutcome struct {
	phase, op string
	status    int
	elapsed   time.Duration
	problem   bool // application/problem+json
	retry     bool // Retry-After present
	err       error
	body      string
}

// faultWorker is one signed-up user working on its own profile and posting into a shared room.
type faultWorker struct {
	n       int
	user    User
	token   string
	profile int64
	etag    string // the profile's ETag as last seen; "" means read it again first
	// names tried, in order, and the index of the last one acknowledged (-1: none).
	names    []string
	ackedIdx int
	acked    []string // chat messages acknowledged with 201
}

// TestDependencyFaultsUnderLoad (issue 9): under a light load of sign-ins, account reads,
// profile writes, chat posts and sync polls, Redis is stopped, then frozen with SIGSTOP, then
// PostgreSQL is stopped, each on servers started for this test alone. Every answer is 2xx, or
// 503 as a problem with Retry-After (never 500, never another 5xx); no request takes more than
// a second; after each dependency comes back (restarted on the same port and data directory,
// or resumed with SIGCONT) everything works again, and nothing acknowledged before or during
// the faults is lost.
func TestDependencyFaultsUnderLoad(t *testing.T) {
	rs := testenv.RedisServer(t)
	pg, dbURL := testenv.PostgresServer(t)
	e := New(t, func(c *config.Config) { c.RedisURL = rs.URL(); c.DatabaseURL = dbURL })

	const workers = 3
	ws := make([]*faultWorker, workers)
	chatters := make([]chatter, workers)
	for i := range ws {
		c := e.newChatter(t)
		chatters[i] = c
		ws[i] = &faultWorker{n: i, user: c.User, token: c.Token(), profile: c.Profile, ackedIdx: -1}
	}
	room := e.newRoom(t, chatters[0], map[string]any{"name": "Faults"}, chatters[1:]...).Room

	var (
		mu       sync.Mutex
		outcomes []faultOutcome
		phase    = "healthy"
	)
	setPhase := func(p string) { mu.Lock(); phase = p; mu.Unlock() }
	current := func() string { mu.Lock(); defer mu.Unlock(); return phase }
	// record files an answer under the phase its request started in.
	record := func(op, phase string, start time.Time, status int, h http.Header, body []byte, err error) {
		o := faultOutcome{phase: phase, op: op, status: status, elapsed: time.Since(start), err: err, body: truncate(body)}
		if h != nil {
			o.problem = strings.HasPrefix(h.Get("Content-Type"), "application/problem+json")
			o.retry = h.Get("Retry-After") != ""
		}
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				w.round(e, room.Id, i, current, record)
			}
		}()
	}
	// run holds a phase for d of wall time while the workers load the service (a schedule, not a wait for an event).
	run := func(p string, d time.Duration) { setPhase(p); time.Sleep(d) }
	// recover waits, bounded, until every operation succeeds again for every worker.
	recovered := func(what string) {
		t.Helper()
		failed := ""
		if !testenv.WaitFor(20*time.Second, func() bool {
			failed = ""
			for _, w := range ws {
				if f := w.healthy(e); f != "" {
					failed = f
					break
				}
			}
			return failed == ""
		}) {
			t.Fatalf("after %s: the service did not recover within 20 s: %s", what, failed)
		}
	}

	run("healthy", 1500*time.Millisecond)

	if err := rs.Stop(); err != nil {
		t.Fatal(err)
	}
	run("redis stopped", 2*time.Second)
	if err := rs.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	setPhase("redis restarted")
	recovered("the Redis restart")
	run("redis restarted", 500*time.Millisecond)

	if err := rs.Freeze(); err != nil {
		t.Fatal(err)
	}
	run("redis frozen", 2*time.Second)
	if err := rs.Thaw(); err != nil {
		t.Fatal(err)
	}
	setPhase("redis thawed")
	recovered("SIGCONT to Redis")
	run("redis thawed", 500*time.Millisecond)

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	run("postgres stopped", 2*time.Second)
	if err := pg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	setPhase("postgres restarted")
	recovered("the PostgreSQL restart")
	run("postgres restarted", 500*time.Millisecond)

	close(stop)
	wg.Wait()

	// Every answer: 2xx, or 503 as a problem with Retry-After; none slower than the bound.
	byPhase := map[string]map[string]int{}
	slowest := map[string]time.Duration{}
	var bad []string
	seen := map[string]int{}
	for _, o := range outcomes {
		if byPhase[o.phase] == nil {
			byPhase[o.phase] = map[string]int{}
		}
		byPhase[o.phase][fmt.Sprintf("%s %d", o.op, o.status)]++
		if o.elapsed > slowest[o.phase] {
			slowest[o.phase] = o.elapsed
		}
		switch {
		case o.err != nil:
			bad = append(bad, fmt.Sprintf("[%s] %s: transport error after %v: %v", o.phase, o.op, o.elapsed, o.err))
		case o.status == http.StatusServiceUnavailable && (!o.problem || !o.retry):
			bad = append(bad, fmt.Sprintf("[%s] %s: 503 without problem+json or Retry-After: %s", o.phase, o.op, o.body))
		case o.status == http.StatusServiceUnavailable && o.phase == "healthy":
			bad = append(bad, fmt.Sprintf("[%s] %s: 503 with every dependency up: %s", o.phase, o.op, o.body))
		case o.status/100 != 2 && o.status != http.StatusServiceUnavailable:
			bad = append(bad, fmt.Sprintf("[%s] %s: status %d: %s", o.phase, o.op, o.status, o.body))
		}
		if o.elapsed > faultBound {
			bad = append(bad, fmt.Sprintf("[%s] %s took: %v (bound %v), status %d", o.phase, o.op, o.elapsed, faultBound, o.status))
		}
	}
	// One line per kind of failure, with how often it happened.
	var kinds []string
	for _, b := range bad {
		k := b[:strings.Index(b+":", ":")]
		if seen[k]++; seen[k] == 1 {
			kinds = append(kinds, b)
		}
	}
	for i, b := range kinds {
		kinds[i] = fmt.Sprintf("%s (%d times)", b, seen[b[:strings.Index(b+":", ":")]])
	}
	bad = kinds
	phases := make([]string, 0, len(byPhase))
	for p := range byPhase {
		phases = append(phases, p)
	}
	slices.Sort(phases)
	for _, p := range phases {
		t.Logf("%-20s slowest %v: %v", p, slowest[p], byPhase[p])
	}
	for i, b := range bad {
		if i == 30 {
			t.Errorf("… and %d more", len(bad)-30)
			break
		}
		t.Error(b)
	}

	// Nothing acknowledged is lost: each profile carries its last acknowledged name (or a later
	// one whose answer was lost in a fault), and every acknowledged message is in the room.
	for _, w := range ws {
		r, err := e.As(w.token).GetProfileWithResponse(ctx, w.profile, &apiclient.GetProfileParams{})
		if err != nil || r.JSON200 == nil {
			t.Fatalf("worker %d: read the profile back: %v %d %s", w.n, err, r.StatusCode(), r.Body)
		}
		if w.ackedIdx >= 0 && !slices.Contains(w.names[w.ackedIdx:], r.JSON200.Name) {
			t.Errorf("worker %d: profile name %q, but %q was acknowledged last", w.n, r.JSON200.Name, w.names[w.ackedIdx])
		}
	}
	stored := map[string]bool{}
	var after int64
	for range 1000 {
		limit := 100
		r, err := e.As(ws[0].token).ListChatEventsWithResponse(ctx, room.Id, &apiclient.ListChatEventsParams{After: &after, Limit: &limit, XProfileId: ws[0].profile})
		if err != nil || r.JSON200 == nil {
			t.Fatalf("read the room back: %v %d %s", err, r.StatusCode(), r.Body)
		}
		for _, ev := range r.JSON200.Items {
			stored[ev.Message] = true
			after = max(after, ev.EventIndex)
		}
		if !r.JSON200.HasMore {
			break
		}
	}
	total := 0
	for _, w := range ws {
		for _, m := range w.acked {
			total++
			if !stored[m] {
				t.Errorf("worker %d: acknowledged message %q is not in the room", w.n, m)
			}
		}
	}
	if total == 0 {
		t.Error("no message was acknowledged at all")
	}
	t.Logf("%d requests, %d acknowledged messages re-read", len(outcomes), total)
}

// round makes one request of each kind, recording each answer.
func (w *faultWorker) round(e *Env, roomID int64, i int, current func() string, record func(string, string, time.Time, int, http.Header, []byte, error)) {
	anon := e.Anon()
	ph, start := current(), time.Now()
	in, err := anon.SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: w.user.LoginID, Password: Password})
	recordResp(record, ph, "signIn", start, in, err)

	c := e.As(w.token)
	ph, start = current(), time.Now()
	acc, err := c.GetMyAccountWithResponse(ctx)
	recordResp(record, ph, "getMyAccount", start, acc, err)

	if w.etag == "" {
		ph, start = current(), time.Now()
		p, err := c.GetProfileWithResponse(ctx, w.profile, &apiclient.GetProfileParams{})
		recordResp(record, ph, "getProfile", start, p, err)
		if err == nil && p.StatusCode() == http.StatusOK {
			w.etag = p.HTTPResponse.Header.Get("ETag")
		}
	}
	if w.etag != "" {
		name := fmt.Sprintf("Worker %d round %d", w.n, i)
		w.names = append(w.names, name)
		ph, start = current(), time.Now()
		u, err := c.UpdateProfileWithResponse(ctx, w.profile, &apiclient.UpdateProfileParams{IfMatch: &w.etag}, apiclient.UpdateProfileJSONRequestBody{Name: &name})
		recordResp(record, ph, "updateProfile", start, u, err)
		if err == nil && u.StatusCode() == http.StatusOK {
			w.ackedIdx = len(w.names) - 1
			w.etag = u.HTTPResponse.Header.Get("ETag")
		} else {
			w.etag = "" // the write may or may not have happened: read the version again
		}
	}

	msg := fmt.Sprintf("worker %d message %d", w.n, i)
	ph, start = current(), time.Now()
	m, err := c.PostChatMessageWithResponse(ctx, roomID, &apiclient.PostChatMessageParams{XProfileId: w.profile}, apiclient.PostChatMessageJSONRequestBody{Message: msg})
	recordResp(record, ph, "postChatMessage", start, m, err)
	if err == nil && m.StatusCode() == http.StatusCreated {
		w.acked = append(w.acked, msg)
	}

	ph, start = current(), time.Now()
	// The plain client: the generated parser would read a problem body a HEAD answer never has.
	h, err := c.HeadSyncFile(ctx, &apiclient.HeadSyncFileParams{})
	if err != nil {
		record("headSyncFile", ph, start, 0, nil, nil, err)
	} else {
		h.Body.Close()
		record("headSyncFile", ph, start, h.StatusCode, h.Header, nil, nil)
	}
}

// healthy makes one request of each kind and says which failed ("" when all succeeded).
func (w *faultWorker) healthy(e *Env) string {
	c := e.As(w.token)
	check := func(op string, status int, err error) string {
		if err != nil {
			return fmt.Sprintf("%s: %v", op, err)
		}
		if status/100 != 2 {
			return fmt.Sprintf("%s: status %d", op, status)
		}
		return ""
	}
	in, err := e.Anon().SignInWithResponse(ctx, nil, apiclient.SignInJSONRequestBody{Login: w.user.LoginID, Password: Password})
	if err != nil {
		return check("signIn", 0, err)
	} else if f := check("signIn", in.StatusCode(), nil); f != "" {
		return f
	}
	acc, err := c.GetMyAccountWithResponse(ctx)
	if err != nil {
		return check("getMyAccount", 0, err)
	} else if f := check("getMyAccount", acc.StatusCode(), nil); f != "" {
		return f
	}
	p, err := c.GetProfileWithResponse(ctx, w.profile, &apiclient.GetProfileParams{})
	if err != nil {
		return check("getProfile", 0, err)
	} else if f := check("getProfile", p.StatusCode(), nil); f != "" {
		return f
	}
	h, err := c.HeadSyncFile(ctx, &apiclient.HeadSyncFileParams{})
	if err != nil {
		return check("headSyncFile", 0, err)
	}
	h.Body.Close()
	return check("headSyncFile", h.StatusCode, nil)
}

func recordResp[R interface {
	StatusCode() int
	*apiclient.SignInResponse | *apiclient.GetMyAccountResponse | *apiclient.GetProfileResponse |
		*apiclient.UpdateProfileResponse | *apiclient.PostChatMessageResponse
}](record func(string, string, time.Time, int, http.Header, []byte, error), ph, op string, start time.Time, r R, err error) {
	if err != nil || r == nil {
		record(op, ph, start, 0, nil, nil, err)
		return
	}
	var (
		h    http.Header
		body []byte
	)
	switch v := any(r).(type) {
	case *apiclient.SignInResponse:
		h, body = v.HTTPResponse.Header, v.Body
	case *apiclient.GetMyAccountResponse:
		h, body = v.HTTPResponse.Header, v.Body
	case *apiclient.GetProfileResponse:
		h, body = v.HTTPResponse.Header, v.Body
	case *apiclient.UpdateProfileResponse:
		h, body = v.HTTPResponse.Header, v.Body
	case *apiclient.PostChatMessageResponse:
		h, body = v.HTTPResponse.Header, v.Body
	}
	record(op, ph, start, r.StatusCode(), h, body, nil)
}
