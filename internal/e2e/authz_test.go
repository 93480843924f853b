package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/bca-app/backend/gen/api"
)

// The authorisation matrix: every profile/card operation × caller × target state, with the
// expected answer of each cell written down. "200r" is a 200 whose profile is redacted; "200:n"
// a 200 whose list has n items.

type actor string

const (
	anonymous actor = "anonymous"
	stranger  actor = "other user"
	owner     actor = "owner"
	admin     actor = "admin"
	blocked   actor = "blocked"
	follower  actor = "follower"
	pending   actor = "pending requester"
)

var actors = []actor{anonymous, stranger, owner, admin, blocked, follower, pending}

type target string

const (
	publicT  target = "public"
	privateT target = "private"
	deletedT target = "deleted"
	lockedT  target = "locked"
)

var targets = []target{publicT, privateT, deletedT, lockedT}

// world is the cast: the owner has one profile per target state, each with a public and a
// private card; every other actor acts as its own first profile.
type world struct {
	e        *Env
	users    map[actor]User
	acting   map[actor]int64
	profiles map[target]int64
	cards    map[target]int64 // the public card of each target
}

func newWorld(t *testing.T) *world {
	e := New(t)
	w := &world{e: e, users: map[actor]User{}, acting: map[actor]int64{}, profiles: map[target]int64{}, cards: map[target]int64{}}
	for _, a := range actors[1:] {
		w.users[a] = e.SignUp(t)
		w.acting[a] = e.FirstProfile(t, w.users[a])
	}
	e.Exec(t, "UPDATE users SET role = 'admin' WHERE login_id = $1", w.users[admin].LoginID)
	o := w.users[owner]
	for _, tg := range targets {
		private := tg == privateT
		p := e.NewProfile(t, o, map[string]any{"name": "Target " + string(tg), "private": private, "is_follow_list_public": true})
		w.profiles[tg] = p.Id
		w.cards[tg] = e.NewCard(t, o, p.Id, map[string]any{"name": "public card"}).Id
		e.NewCard(t, o, p.Id, map[string]any{"name": "private card", "private": true})
		// The target blocks "blocked"; "follower" follows (accepted); "pending" asks on the private one.
		w.relate(t, owner, p.Id, w.acting[blocked], "BLOCK")
		w.relate(t, follower, w.acting[follower], p.Id, "FOLLOW")
		if private {
			status, _, body := e.call(t, o.Token(), 0, "POST", fmt.Sprintf("/api/v1/profiles/%d/follow-requests/%d", p.Id, w.acting[follower]), nil)
			Status(t, "accept follower", status, http.StatusOK, body)
			w.relate(t, pending, w.acting[pending], p.Id, "FOLLOW")
		}
	}
	status, _, body := e.call(t, o.Token(), 0, "DELETE", fmt.Sprintf("/api/v1/profiles/%d", w.profiles[deletedT]), nil, "If-Match", "*")
	Status(t, "delete target", status, http.StatusNoContent, body)
	e.Exec(t, "UPDATE profiles SET locked_at = now() WHERE id = $1", w.profiles[lockedT])
	return w
}

func (w *world) relate(t *testing.T, who actor, from, to int64, status string) {
	t.Helper()
	code, _, body := w.e.call(t, w.users[who].Token(), from, "PUT", fmt.Sprintf("/api/v1/profiles/%d/relation", to), map[string]any{"status": status})
	Status(t, "relate", code, http.StatusOK, body)
}

// do runs one cell and describes its answer the way the tables do.
func (w *world) do(t *testing.T, a actor, method, path string, acting bool, body any, headers ...string) string {
	t.Helper()
	token, from := "", int64(0)
	if a != anonymous {
		token = w.users[a].Token()
		if acting {
			from = w.acting[a]
		}
	}
	if acting && a == anonymous {
		headers = append(headers, "X-Profile-Id", "1")
	}
	status, _, b := w.e.call(t, token, from, method, path, body, headers...)
	out := strconv.Itoa(status)
	if status != http.StatusOK || len(b) == 0 {
		return out
	}
	switch {
	case strings.Contains(path, "/cards") && method == "GET" && !strings.Contains(path, "/api/v1/cards/"):
		return out + ":" + strconv.Itoa(len(decode[api.CardList](t, b).Items))
	case strings.HasSuffix(path, "/followers"):
		return out + ":" + strconv.Itoa(len(decode[api.ProfileList](t, b).Items))
	case method == "GET" && strings.HasPrefix(path, "/api/v1/profiles/") && strings.Count(path, "/") == 4:
		if decode[api.Profile](t, b).Redacted {
			return out + "r"
		}
	}
	return out
}

type cell func(w *world, t *testing.T, a actor, tg target) string

func TestAuthorizationMatrix(t *testing.T) {
	profilePath := func(w *world, tg target, suffix string) string {
		return fmt.Sprintf("/api/v1/profiles/%d%s", w.profiles[tg], suffix)
	}
	cardPath := func(w *world, tg target, suffix string) string {
		return fmt.Sprintf("/api/v1/cards/%d%s", w.cards[tg], suffix)
	}
	ops := []struct {
		name string
		run  cell
		// expected[actor] lists the answers for public, private, deleted, locked.
		expected map[actor][4]string
	}{
		{"getProfile", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "GET", profilePath(w, tg, ""), a != owner && a != admin && a != anonymous, nil)
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"200", "200r", "200", "404"},
			owner:     {"200", "200", "200", "200"},
			admin:     {"200", "200", "200", "200"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"200", "200", "200", "404"},
			pending:   {"200", "200r", "200", "404"},
		}},
		{"exportProfileVCard", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "GET", profilePath(w, tg, "/vcard"), a != owner && a != admin && a != anonymous, nil)
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"200", "200", "200", "404"},
			owner:     {"200", "200", "200", "200"},
			admin:     {"200", "200", "200", "200"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"200", "200", "200", "404"},
			pending:   {"200", "200", "200", "404"},
		}},
		{"updateProfile", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "PATCH", profilePath(w, tg, ""), false, map[string]any{"team_name": "x"}, "If-Match", "*")
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"404", "404", "404", "404"},
			owner:     {"200", "200", "404", "200"},
			admin:     {"404", "404", "404", "404"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"404", "404", "404", "404"},
			pending:   {"404", "404", "404", "404"},
		}},
		{"listProfileCards", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "GET", profilePath(w, tg, "/cards"), a != owner && a != admin && a != anonymous, nil)
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"200:1", "200:0", "200:0", "404"},
			owner:     {"200:2", "200:2", "200:0", "200:2"},
			admin:     {"200:2", "200:2", "200:0", "200:2"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"200:1", "200:1", "200:0", "404"},
			pending:   {"200:1", "200:0", "200:0", "404"},
		}},
		{"getCard", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "GET", cardPath(w, tg, ""), a != owner && a != admin && a != anonymous, nil)
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"200", "404", "404", "404"},
			owner:     {"200", "200", "200", "200"},
			admin:     {"200", "200", "200", "200"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"200", "200", "404", "404"},
			pending:   {"200", "404", "404", "404"},
		}},
		{"subscribeCard", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "PUT", cardPath(w, tg, "/subscription"), true, map[string]any{})
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"200", "404", "404", "404"},
			owner:     {"409", "409", "409", "409"},
			admin:     {"200", "200", "404", "404"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"200", "200", "404", "404"},
			pending:   {"200", "404", "404", "404"},
		}},
		{"getRelation", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "GET", profilePath(w, tg, "/relation"), true, nil)
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"200", "200", "200", "404"},
			owner:     {"400", "400", "400", "400"},
			admin:     {"200", "200", "200", "404"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"200", "200", "200", "404"},
			pending:   {"200", "200", "200", "404"},
		}},
		{"setRelation FOLLOW", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "PUT", profilePath(w, tg, "/relation"), true, map[string]any{"status": "FOLLOW"})
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"200", "200", "404", "404"},
			owner:     {"400", "400", "400", "400"},
			admin:     {"200", "200", "404", "404"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"200", "200", "404", "404"},
			pending:   {"200", "200", "404", "404"},
		}},
		{"listFollowers", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "GET", profilePath(w, tg, "/followers"), a != owner && a != admin && a != anonymous, nil)
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"200:1", "403", "200:1", "404"},
			owner:     {"200:1", "200:1", "200:1", "200:1"},
			admin:     {"200:1", "200:1", "200:1", "200:1"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"200:1", "200:1", "200:1", "404"},
			pending:   {"200:1", "403", "200:1", "404"},
		}},
		{"listFollowRequests", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "GET", profilePath(w, tg, "/follow-requests"), false, nil)
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"403", "403", "403", "403"},
			owner:     {"200", "200", "404", "404"},
			admin:     {"403", "403", "403", "403"},
			blocked:   {"403", "403", "403", "403"},
			follower:  {"403", "403", "403", "403"},
			pending:   {"403", "403", "403", "403"},
		}},
		{"deleteProfile", func(w *world, t *testing.T, a actor, tg target) string {
			return w.do(t, a, "DELETE", profilePath(w, tg, ""), false, nil, "If-Match", "*")
		}, map[actor][4]string{
			anonymous: {"401", "401", "401", "401"},
			stranger:  {"404", "404", "404", "404"},
			owner:     {"204", "204", "404", "204"},
			admin:     {"404", "404", "404", "404"},
			blocked:   {"404", "404", "404", "404"},
			follower:  {"404", "404", "404", "404"},
			pending:   {"404", "404", "404", "404"},
		}},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			w := newWorld(t)
			// The owner acts last on writes, so its changes cannot decide other cells.
			order := []actor{anonymous, stranger, admin, blocked, follower, pending, owner}
			for _, a := range order {
				for i, tg := range targets {
					if got, want := op.run(w, t, a, tg), op.expected[a][i]; got != want {
						t.Errorf("%s × %s × %s: got %s, want %s", op.name, a, tg, got, want)
					}
				}
			}
		})
	}
}
