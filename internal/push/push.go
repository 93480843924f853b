// Package push delivers data messages to users' devices (FCM HTTP v1 in production, the log
// locally). Push never fails the operation that caused it: senders log and move on.
package push

import (
	"context"
	"log/slog"
	"slices"
)

// Message is one push. Data values are plain strings (FCM data messages); Title and Body, when
// set, add a visible notification.
type Message struct {
	Data  map[string]string
	Title string
	Body  string
}

// Sender pushes to the device tokens of users' live sessions.
type Sender interface {
	// SendToUsers pushes msg to every live session of the users except exceptSessionID (0 = none).
	SendToUsers(ctx context.Context, userIDs []int64, exceptSessionID int64, msg Message)
}

// LogSender writes pushes to the log (the local default when no FCM credentials are set).
type LogSender struct{ Log *slog.Logger }

// SendToUsers logs the message.
func (l LogSender) SendToUsers(ctx context.Context, userIDs []int64, exceptSessionID int64, msg Message) {
	// Metadata only: message text, titles and bodies never reach the log.
	keys := make([]string, 0, len(msg.Data))
	for k := range msg.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	l.Log.InfoContext(ctx, "push", "users", userIDs, "except_session", exceptSessionID, "type", msg.Data["type"],
		"data_keys", keys, "has_notification", msg.Title != "" || msg.Body != "")
}
