package push_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/bca-app/backend/internal/push"
)

// TestLogSenderLogsMetadataOnly: the sender used when FCM is not configured writes who, which
// type and which keys to the log, never the message text, the notification title or body, or
// any other data value (a chat message is private to its room).
func TestLogSenderLogsMetadataOnly(t *testing.T) {
	var buf bytes.Buffer
	s := push.LogSender{Log: slog.New(slog.NewJSONHandler(&buf, nil))}
	secrets := []string{"meet me at the secret place", "Secret room title", "secret body text", "secret-caused-by-name"}
	s.SendToUsers(context.Background(), []int64{7, 9}, 3, push.Message{
		Data: map[string]string{
			"type": "chat", "room_id": "42", "event_index": "5",
			"message": secrets[0], "caused_by_profile_name": secrets[3],
		},
		Title: secrets[1], Body: secrets[2],
	})
	out := buf.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log holds %q: %s", s, out)
		}
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line: %v: %s", err, out)
	}
	if line["msg"] != "push" || line["type"] != "chat" || line["has_notification"] != true {
		t.Errorf("metadata missing: %s", out)
	}
	if users, _ := line["users"].([]any); len(users) != 2 {
		t.Errorf("users missing: %s", out)
	}
}
