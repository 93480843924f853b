package contract

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The acting-profile rule (docs/product.md §2), checked on every operation of openapi.yaml:
// an operation takes X-Profile-Id as required, as optional, or not at all, and which one follows
// from what it does. Operations whose path names something the caller owns take none;
// reads whose answer depends on who looks take it optionally; doing something as a profile
// requires it. A new operation must be classified here, so the rule cannot drift silently.
var actingRule = map[string]string{
	// (1) done as a profile, or listing what a profile holds: required
	"getRelation": "required", "setRelation": "required", "deleteRelation": "required",
	"listMyCards": "required", "createCard": "required",
	"getCardSubscription": "required", "subscribeCard": "required", "unsubscribeCard": "required",
	"listMySubscriptions": "required", "getCardShare": "required",
	"listChatRooms": "required", "createChatRoom": "required", "streamChatEvents": "required",
	"getChatRoom": "required", "updateChatRoom": "required", "addChatParticipants": "required",
	"removeChatParticipant": "required", "listChatEvents": "required", "postChatMessage": "required",
	"postChatImage": "required", "deleteChatMessage": "required", "setChatReadMarker": "required",
	"reportProfile": "required", "reportCard": "required", "reportChatMessage": "required",
	// (2) reads whose answer depends on who looks: optional
	"getFile": "optional", "getProfile": "optional", "listProfileCards": "optional",
	"listFollowers": "optional", "listFollowing": "optional", "exportProfileVCard": "optional",
	"getCard": "optional",
}

func TestActingProfileRule(t *testing.T) {
	spec, err := openapi3.NewLoader().LoadFromFile(filepath.Join("..", "..", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			got := "none"
			for _, p := range append(item.Parameters, op.Parameters...) {
				if p.Value != nil && p.Value.In == "header" && p.Value.Name == "X-Profile-Id" {
					got = map[bool]string{true: "required", false: "optional"}[p.Value.Required]
				}
			}
			want, listed := actingRule[op.OperationID]
			if !listed {
				want = "none"
			}
			seen[op.OperationID] = true
			if got != want {
				t.Errorf("%s %s (%s): X-Profile-Id is %s, the rule says %s", method, path, op.OperationID, got, want)
			}
		}
	}
	for id := range actingRule {
		if !seen[id] {
			t.Errorf("%s is in the rule table but not in openapi.yaml", id)
		}
	}
	if desc := spec.Info.Description; !strings.Contains(desc, "Acting profile (`X-Profile-Id`)") {
		t.Error("the spec's description no longer states the acting-profile rule")
	}
}
