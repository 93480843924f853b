package backend

import (
	"context"
	"slices"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

// The operationIds docs/product.md §11 fixes: they become method names in every generated client.
var fixedOperationIDs = []string{
	"ping", "signUp", "checkAvailability", "signIn", "refreshSession", "signOut", "signOutEverywhere",
	"listSessions", "revokeSession", "getMyAccount", "updateMyAccount", "changePassword",
	"requestPasswordReset", "resetPassword", "verifyEmail", "resendVerificationEmail", "deactivateAccount",
	"setAccountImage", "deleteAccountImage", "uploadFile", "getFile", "listMyProfiles", "createProfile",
	"getProfile", "updateProfile", "deleteProfile", "setProfileImage", "deleteProfileImage", "listProfileCards",
	"getRelation", "setRelation", "deleteRelation", "listFollowRequests", "acceptFollowRequest",
	"rejectFollowRequest", "listFollowers", "listFollowing", "exportProfileVCard", "listMyCards", "createCard",
	"getCard", "updateCard", "deleteCard", "getCardSubscription", "subscribeCard", "unsubscribeCard",
	"headSyncFile", "getSyncFile", "rebuildSyncFile", "listChatRooms", "createChatRoom", "getChatRoom",
	"updateChatRoom", "addChatParticipants", "removeChatParticipant", "listChatEvents", "postChatMessage",
	"postChatImage", "deleteChatMessage", "setChatReadMarker", "streamChatEvents",
}

// TestContract holds openapi.yaml to what the Android team's generator and Swagger UI need.
func TestContract(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(OpenAPISpec)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI document: %v", err)
	}
	var ids []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			switch {
			case op.OperationID == "":
				t.Errorf("%s: no operationId", where)
			case op.Summary == "":
				t.Errorf("%s: no summary", where)
			case len(op.Tags) == 0:
				t.Errorf("%s: no tag", where)
			}
			ids = append(ids, op.OperationID)
			if op.Responses.Default() == nil {
				t.Errorf("%s: no default (problem) response", where)
			}
			if op.RequestBody == nil {
				continue
			}
			for mt, media := range op.RequestBody.Value.Content {
				if mt != "application/json" {
					continue
				}
				if media.Example == nil && len(media.Examples) == 0 {
					t.Errorf("%s: JSON request body without an example", where)
				}
				if s := media.Schema.Value; s.Type.Is("object") && (s.AdditionalProperties.Has == nil || *s.AdditionalProperties.Has) {
					t.Errorf("%s: request body accepts unknown fields (set additionalProperties: false)", where)
				}
			}
		}
	}
	for _, id := range fixedOperationIDs {
		if !slices.Contains(ids, id) {
			t.Errorf("operationId %s (fixed by docs/product.md §11) is missing", id)
		}
	}
}
