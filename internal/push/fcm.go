package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"google.golang.org/api/option"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/domain"
)

// Tokens is where the device tokens of live sessions live (the sessions table).
type Tokens interface {
	ListDeviceTokensOfUsers(ctx context.Context, userIDs []int64) ([]db.ListDeviceTokensOfUsersRow, error)
	ClearDeviceToken(ctx context.Context, deviceToken *string) error
}

// FCM sends pushes through Firebase Cloud Messaging (HTTP v1), one message per device token.
type FCM struct {
	client      *messaging.Client
	tokens      Tokens
	log         *slog.Logger
	concurrency int
	timeout     time.Duration
}

// FCMDeps configure the FCM sender and name its collaborators.
type FCMDeps struct {
	// Certificate is the service-account key: a file path or the JSON itself (FIREBASE_CERTIFICATE).
	Certificate string
	// Endpoint overrides the FCM API base, e.g. "http://127.0.0.1:9999/v1" (FCM_ENDPOINT; tests).
	Endpoint string
	// Concurrency bounds the sends in flight per push (default 8).
	Concurrency int
	// Timeout bounds one push, its token lookup and every send of it (default DefaultTimeout):
	// a hung FCM or database costs a push that long, never a caller for ever.
	Timeout time.Duration
	Tokens  Tokens // required
	Log     *slog.Logger
}

// NewFCM builds the sender from a service-account key; it refuses missing dependencies. A key
// that cannot be read or parsed is an error naming FIREBASE_CERTIFICATE, so a bad configuration
// stops the start, not the pushes.
func NewFCM(ctx context.Context, d FCMDeps) (*FCM, error) {
	if err := domain.RequireDeps("push", map[string]any{"Tokens": d.Tokens, "Log": d.Log}); err != nil {
		return nil, err
	}
	key, err := readCertificate(d.Certificate)
	if err != nil {
		return nil, err
	}
	var sa struct {
		Type      string `json:"type"`
		ProjectID string `json:"project_id"`
	}
	if err := json.Unmarshal(key, &sa); err != nil || sa.ProjectID == "" || sa.Type != "service_account" {
		return nil, errors.New("FIREBASE_CERTIFICATE: must be a service-account key (JSON with type service_account and project_id)")
	}
	opts := []option.ClientOption{option.WithCredentialsJSON(key)}
	if d.Endpoint != "" {
		opts = append(opts, option.WithEndpoint(strings.TrimSuffix(d.Endpoint, "/")))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: sa.ProjectID}, opts...)
	if err != nil {
		return nil, fmt.Errorf("FIREBASE_CERTIFICATE: firebase app: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("FIREBASE_CERTIFICATE: messaging client: %w", err)
	}
	if d.Concurrency <= 0 {
		d.Concurrency = 8
	}
	if d.Timeout <= 0 {
		d.Timeout = DefaultTimeout
	}
	return &FCM{client: client, tokens: d.Tokens, log: d.Log, concurrency: d.Concurrency, timeout: d.Timeout}, nil
}

// DefaultTimeout bounds one push unless FCMDeps.Timeout says otherwise.
const DefaultTimeout = 10 * time.Second

func readCertificate(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "{") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("FIREBASE_CERTIFICATE: read %s: %w", v, err)
	}
	return b, nil
}

// SendToUsers sends msg to each distinct device token of the users' live sessions, except the
// token of session exceptSessionID (the device that caused the push). Tokens FCM reports as
// unregistered are cleared. Failures are logged, never returned.
func (f *FCM) SendToUsers(ctx context.Context, userIDs []int64, exceptSessionID int64, msg Message) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rows, err := f.tokens.ListDeviceTokensOfUsers(ctx, userIDs)
	if err != nil {
		f.log.WarnContext(ctx, "push: load device tokens", "err", err)
		return
	}
	skip := map[string]bool{"": true}
	for _, r := range rows {
		if r.SessionID == exceptSessionID {
			skip[r.DeviceToken] = true // the sender's device, whichever of its sessions holds it
		}
	}
	var targets []string
	for _, r := range rows {
		if !skip[r.DeviceToken] {
			skip[r.DeviceToken] = true
			targets = append(targets, r.DeviceToken)
		}
	}
	sem := make(chan struct{}, f.concurrency)
	var wg sync.WaitGroup
	for _, token := range targets {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f.sendOne(ctx, token, msg)
		}()
	}
	wg.Wait()
}

// clearTimeout bounds clearing an unregistered token, which goes on when the push's own
// deadline has passed.
const clearTimeout = 5 * time.Second

func (f *FCM) sendOne(ctx context.Context, token string, msg Message) {
	m := &messaging.Message{Token: token, Data: msg.Data, Android: &messaging.AndroidConfig{Priority: "high"}}
	if msg.Title != "" && msg.Body != "" {
		m.Notification = &messaging.Notification{Title: msg.Title, Body: msg.Body}
	}
	_, err := f.client.Send(ctx, m)
	switch {
	case err == nil:
		return
	case messaging.IsUnregistered(err):
		f.log.InfoContext(ctx, "push: device token unregistered; clearing it")
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), clearTimeout)
		defer cancel()
		if err := f.tokens.ClearDeviceToken(cctx, &token); err != nil {
			f.log.WarnContext(ctx, "push: clear device token", "err", err)
		}
	default:
		f.log.WarnContext(ctx, "push: send failed", "err", err)
	}
}
