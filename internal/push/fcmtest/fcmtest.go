// Package fcmtest is a loopback stand-in for Firebase Cloud Messaging, for tests that drive the
// real firebase client: it issues OAuth tokens for a generated service account (the JWT-bearer
// exchange at the key's token_uri), accepts POST /v1/projects/{project}/messages:send, records
// every message, and answers UNREGISTERED (404 with the FCM error details) for tokens a test
// marks so.
package fcmtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bca-app/backend/internal/testenv"
)

// ProjectID is the Firebase project of the generated service account.
const ProjectID = "bca-fcmtest"

const accessToken = "fcmtest-access-token"

// Message is one accepted send.
type Message struct {
	Token        string            `json:"token"`
	Data         map[string]string `json:"data"`
	Notification *struct {
		Title string `json:"title"`
		Body  string `json:"body"`
	} `json:"notification"`
}

// Server is a running fake FCM.
type Server struct {
	srv *httptest.Server
	key *rsa.PrivateKey

	mu           sync.Mutex
	messages     []Message
	unregistered map[string]bool
	rejected     []string
	tokenGrants  int
	stalled      bool
	release      chan struct{} // closed when the test ends: stalled sends give up
}

// New starts a fake FCM that stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("fcmtest key: %v", err)
	}
	s := &Server{key: key, unregistered: map[string]bool{}, release: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /v1/projects/{project}/{send}", s.send)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.release) }) // before Close, which waits for the stalled sends
	return s
}

// Stall makes every later send hang without an answer until its client gives up (or the test
// ends): an FCM that accepts connections but never replies.
func (s *Server) Stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalled = true
}

// Endpoint is the FCM API base to configure (FCM_ENDPOINT).
func (s *Server) Endpoint() string { return s.srv.URL + "/v1" }

// Credentials is a service-account key whose token_uri points at this server
// (FIREBASE_CERTIFICATE).
func (s *Server) Credentials() string {
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     ProjectID,
		"private_key_id": "fcmtest",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   "push@" + ProjectID + ".iam.gserviceaccount.com",
		"client_id":      "1",
		"token_uri":      s.srv.URL + "/token",
	})
	return string(b)
}

// Unregister makes sends to token fail as FCM does for an app that was uninstalled.
func (s *Server) Unregister(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unregistered[token] = true
}

// Messages returns the accepted messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Rejected returns the tokens answered UNREGISTERED, in order.
func (s *Server) Rejected() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejected...)
}

// TokenGrants counts the OAuth token exchanges.
func (s *Server) TokenGrants() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokenGrants
}

// Wait polls until cond holds for the accepted messages, or fails the test after timeout.
func (s *Server) Wait(t testing.TB, timeout time.Duration, what string, cond func([]Message) bool) []Message {
	t.Helper()
	var msgs []Message
	if !testenv.WaitFor(timeout, func() bool { msgs = s.Messages(); return cond(msgs) }) {
		t.Fatalf("fcmtest: %s: not within %v; got %d messages: %+v", what, timeout, len(msgs), msgs)
	}
	return msgs
}

// token answers the OAuth 2.0 JWT-bearer grant after checking the assertion's signature.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
		return
	}
	if err := s.verify(r.Form.Get("assertion")); err != nil {
		http.Error(w, `{"error":"invalid_grant","error_description":"`+err.Error()+`"}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.tokenGrants++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": accessToken, "token_type": "Bearer", "expires_in": 3600})
}

func (s *Server) verify(jwt string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("assertion is not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("signature encoding")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("bad signature")
	}
	return nil
}

// send is messages:send of the FCM HTTP v1 API.
func (s *Server) send(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	stalled := s.stalled
	s.mu.Unlock()
	if stalled {
		select {
		case <-r.Context().Done():
		case <-s.release:
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.PathValue("project") != ProjectID || r.PathValue("send") != "messages:send" {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "")
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+accessToken {
		writeError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR")
		return
	}
	var req struct {
		Message Message `json:"message"`
	}
	// Data values must be strings: anything else fails to decode, as FCM refuses it.
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Message.Token == "" {
		writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
		return
	}
	s.mu.Lock()
	if s.unregistered[req.Message.Token] {
		s.rejected = append(s.rejected, req.Message.Token)
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "NOT_FOUND", "UNREGISTERED")
		return
	}
	s.messages = append(s.messages, req.Message)
	n := len(s.messages)
	s.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]string{"name": fmt.Sprintf("projects/%s/messages/%d", ProjectID, n)})
}

// writeError answers like FCM: a Google API error with the FCM error code in its details.
func writeError(w http.ResponseWriter, status int, grpcStatus, fcmCode string) {
	body := map[string]any{"code": status, "message": "fcmtest: " + strings.ToLower(grpcStatus), "status": grpcStatus}
	if fcmCode != "" {
		body["details"] = []map[string]string{{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcmCode}}
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}
