package push_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/push"
	"github.com/bca-app/backend/internal/push/fcmtest"
)

type fakeTokens struct {
	mu      sync.Mutex
	rows    []db.ListDeviceTokensOfUsersRow
	cleared []string
}

func (f *fakeTokens) ListDeviceTokensOfUsers(_ context.Context, userIDs []int64) ([]db.ListDeviceTokensOfUsersRow, error) {
	var out []db.ListDeviceTokensOfUsersRow
	for _, r := range f.rows {
		if slices.Contains(userIDs, r.UserID) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeTokens) ClearDeviceToken(_ context.Context, token *string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleared = append(f.cleared, *token)
	return nil
}

// TestFCMThroughTheRealClient sends through firebase.google.com/go/v4 to the loopback FCM: the
// OAuth exchange, one message per distinct token except the sender's device, plain string data,
// the notification, and clearing an unregistered token.
func TestFCMThroughTheRealClient(t *testing.T) {
	fake := fcmtest.New(t)
	tokens := &fakeTokens{rows: []db.ListDeviceTokensOfUsersRow{
		{SessionID: 1, UserID: 10, DeviceToken: "sender-phone"},
		{SessionID: 2, UserID: 10, DeviceToken: "sender-tablet"},
		{SessionID: 3, UserID: 20, DeviceToken: "friend-phone"},
		{SessionID: 4, UserID: 20, DeviceToken: "friend-phone"}, // the same device signed in twice
		{SessionID: 5, UserID: 30, DeviceToken: "uninstalled"},
		{SessionID: 6, UserID: 10, DeviceToken: "sender-phone"}, // an older session of the sending device
	}}
	fake.Unregister("uninstalled")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx := context.Background()
	f, err := push.NewFCM(ctx, push.FCMDeps{Certificate: fake.Credentials(), Endpoint: fake.Endpoint(), Tokens: tokens, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	f.SendToUsers(ctx, []int64{10, 20, 30}, 1, push.Message{
		Data: map[string]string{"type": "chat", "message": "hi"}, Title: "Room", Body: "hi",
	})
	msgs := fake.Wait(t, 5*time.Second, "two messages", func(m []fcmtest.Message) bool { return len(m) >= 2 })
	var got []string
	for _, m := range msgs {
		got = append(got, m.Token)
		if m.Data["type"] != "chat" || m.Data["message"] != "hi" || m.Notification == nil || m.Notification.Title != "Room" {
			t.Errorf("message %+v", m)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"friend-phone", "sender-tablet"}) {
		t.Fatalf("sent to %v; want every distinct token but the sending device's", got)
	}
	if !slices.Equal(fake.Rejected(), []string{"uninstalled"}) || !slices.Equal(tokens.cleared, []string{"uninstalled"}) {
		t.Fatalf("unregistered token: rejected %v, cleared %v", fake.Rejected(), tokens.cleared)
	}
	if fake.TokenGrants() == 0 {
		t.Fatal("no OAuth token exchange: the service-account credentials were not used")
	}

	if _, err := push.NewFCM(ctx, push.FCMDeps{Certificate: `{"type":"authorized_user"}`, Tokens: tokens, Log: log}); err == nil {
		t.Fatal("a key that is not a service account must be refused at start")
	}
	if _, err := push.NewFCM(ctx, push.FCMDeps{Certificate: "/no/such/file.json", Tokens: tokens, Log: log}); err == nil {
		t.Fatal("a missing key file must be refused at start")
	}
	if _, err := push.NewFCM(ctx, push.FCMDeps{Certificate: fake.Credentials(), Endpoint: fake.Endpoint()}); err == nil || err.Error() != "push: missing dependencies: Log, Tokens" {
		t.Fatalf("missing dependencies: err = %v", err)
	}
}

// TestFCMPushHasADeadline: an FCM that accepts connections and never answers costs a push its
// Timeout, even when the caller's context has no deadline (the sync announcement's does not).
func TestFCMPushHasADeadline(t *testing.T) {
	fake := fcmtest.New(t)
	tokens := &fakeTokens{rows: []db.ListDeviceTokensOfUsersRow{
		{SessionID: 1, UserID: 10, DeviceToken: "phone"},
		{SessionID: 2, UserID: 10, DeviceToken: "tablet"},
	}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const timeout = 300 * time.Millisecond
	f, err := push.NewFCM(context.Background(), push.FCMDeps{Certificate: fake.Credentials(), Endpoint: fake.Endpoint(), Tokens: tokens, Log: log, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	send := func() time.Duration {
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			f.SendToUsers(context.Background(), []int64{10}, 0, push.Message{Data: map[string]string{"type": "sync"}})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a push to a hung FCM did not return within 10 s")
		}
		return time.Since(start)
	}
	fake.Stall()
	if took := send(); took < timeout {
		t.Fatalf("the push returned after %v, before its %v deadline: the stall did not hold it", took, timeout)
	}
	if n := len(fake.Messages()); n != 0 {
		t.Fatalf("a stalled FCM recorded %d messages", n)
	}
}
