package card

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
)

// Share links (docs/product.md §6 "Sharing"). A token is 32 random bytes, never derived from ids.
// The database holds its SHA-256 (to find the link) and the token sealed with AES-GCM under a key
// derived from SECRET_KEY (so the owner can list and show the link again): the database alone
// hands out no working link.

// TokenLength is the length of a share token in characters (base64url of 32 bytes).
const TokenLength = 43

// MaxShareLifetime bounds expires_at.
const MaxShareLifetime = 366 * 24 * time.Hour

// Shares owns share links.
type Shares struct {
	q     *db.Queries
	cards *Service
	aead  cipher.AEAD
}

// SharesDeps are the collaborators of Shares.
type SharesDeps struct {
	Pool   *pgxpool.Pool
	Cards  *Service
	Secret []byte // the service's SECRET_KEY, which seals the tokens
}

// NewShares wires the share links of cards; it refuses missing dependencies.
func NewShares(d SharesDeps) (*Shares, error) {
	if err := domain.RequireDeps("card shares", map[string]any{"Pool": d.Pool, "Cards": d.Cards, "Secret": d.Secret}); err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, d.Secret)
	mac.Write([]byte("bca card share token seal v1"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("share token cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("share token cipher: %w", err)
	}
	return &Shares{q: db.New(d.Pool), cards: d.Cards, aead: aead}, nil
}

// Share is a link with its token when it can be unsealed ("" otherwise).
type Share struct {
	db.CardShare
	Token string
}

// Active reports whether the link still opens its card (the card's own state aside).
func (s Share) Active(now time.Time) bool {
	return s.RevokedAt == nil && (s.ExpiresAt == nil || s.ExpiresAt.After(now)) &&
		(s.MaxUses == nil || s.UseCount < *s.MaxUses)
}

// ShareInput is a new link's optional limits.
type ShareInput struct {
	ExpiresAt *time.Time
	MaxUses   *int
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// WellFormedToken reports whether s can be a share token at all, so garbage is turned away
// before it reaches the database.
func WellFormedToken(s string) bool {
	if len(s) != TokenLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func cardAAD(cardID int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("card:"), uint64(cardID))
}

func (s *Shares) seal(cardID int64, token string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(token), cardAAD(cardID))
}

func (s *Shares) unseal(row db.CardShare) string {
	n := s.aead.NonceSize()
	if len(row.TokenSealed) < n {
		return ""
	}
	plain, err := s.aead.Open(nil, row.TokenSealed[:n], row.TokenSealed[n:], cardAAD(row.CardID))
	if err != nil {
		return "" // sealed under another SECRET_KEY: the link still works, it just cannot be shown
	}
	return string(plain)
}

// ownCard loads a live, unlocked card of one of the caller's profiles; anything else is not
// found. The card names the acting profile, as for updateCard (docs/product.md §2).
func (s *Shares) ownCard(ctx context.Context, q *db.Queries, v access.Caller, cardID int64) (db.Card, error) {
	c, err := s.cards.lockOwned(ctx, q, v.UserID, cardID)
	if err != nil {
		return db.Card{}, err
	}
	if c.LockedAt != nil {
		return db.Card{}, domain.NotFound("The card")
	}
	return c, nil
}

// Create makes a link to one of the caller's cards.
func (s *Shares) Create(ctx context.Context, v access.Caller, cardID int64, in ShareInput) (Share, error) {
	if in.ExpiresAt != nil {
		now := s.cards.now()
		if !in.ExpiresAt.After(now) {
			return Share{}, domain.Invalid("expires_at", "must be in the future")
		}
		if in.ExpiresAt.After(now.Add(MaxShareLifetime)) {
			return Share{}, domain.Invalid("expires_at", "must be at most a year ahead")
		}
	}
	var maxUses *int32
	if in.MaxUses != nil {
		if *in.MaxUses < 1 || *in.MaxUses > 1_000_000 {
			return Share{}, domain.Invalid("max_uses", "must be between 1 and 1000000")
		}
		m := int32(*in.MaxUses)
		maxUses = &m
	}
	if _, err := s.ownCard(ctx, s.q, v, cardID); err != nil {
		return Share{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Share{}, fmt.Errorf("share token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	row, err := s.q.CreateCardShare(ctx, db.CreateCardShareParams{CardID: cardID, TokenHash: tokenHash(token),
		TokenSealed: s.seal(cardID, token), CreatedByUserID: v.UserID, ExpiresAt: in.ExpiresAt, MaxUses: maxUses})
	if err != nil {
		return Share{}, fmt.Errorf("create share: %w", err)
	}
	return Share{CardShare: row, Token: token}, nil
}

// List lists the links of one of the caller's cards, newest first, ids below beforeID.
func (s *Shares) List(ctx context.Context, v access.Caller, cardID, beforeID int64, limit int) ([]Share, error) {
	if _, err := s.ownCard(ctx, s.q, v, cardID); err != nil {
		return nil, err
	}
	rows, err := s.q.ListCardShares(ctx, db.ListCardSharesParams{CardID: cardID, BeforeID: beforeID, MaxRows: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list shares: %w", err)
	}
	out := make([]Share, len(rows))
	for i, r := range rows {
		out[i] = Share{CardShare: r, Token: s.unseal(r)}
	}
	return out, nil
}

// Revoke ends a link of one of the caller's cards; revoking twice is not an error.
func (s *Shares) Revoke(ctx context.Context, v access.Caller, cardID, shareID int64) error {
	if _, err := s.ownCard(ctx, s.q, v, cardID); err != nil {
		return err
	}
	_, err := s.q.RevokeCardShare(ctx, db.RevokeCardShareParams{ID: shareID, CardID: cardID})
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.NotFound("The share link")
	}
	if err != nil {
		return fmt.Errorf("revoke share: %w", err)
	}
	return nil
}

// ErrShareGone is the answer for a link that existed and no longer works. It says nothing about
// why, or about the card.
var ErrShareGone = domain.E(domain.KindGone, "share.gone", "This link no longer works.")

// Shared is what a live link opens.
type Shared struct {
	Share              db.CardShare
	Card               db.Card
	ProfileName        string
	ProfileImageFileID *int64
	// ProfileImageFileKey is the public id in the image's URL.
	ProfileImageFileKey *string
	OwnerUserID         int64
	// Public: the card and its profile are public, so the page may be indexed.
	Public bool
}

// Resolve finds the live link of a token: not found for unknown or malformed tokens, ErrShareGone
// for revoked, expired or used-up links and for links whose card or profile is deleted or locked.
func (s *Shares) Resolve(ctx context.Context, token string) (Shared, error) {
	return resolveShare(ctx, s.q, token)
}

func resolveShare(ctx context.Context, q *db.Queries, token string) (Shared, error) {
	if !WellFormedToken(token) {
		return Shared{}, domain.NotFound("The share link")
	}
	row, err := q.ResolveCardShare(ctx, tokenHash(token))
	if errors.Is(err, pgx.ErrNoRows) {
		return Shared{}, domain.NotFound("The share link")
	}
	if err != nil {
		return Shared{}, fmt.Errorf("resolve share: %w", err)
	}
	sh := row.CardShare
	usedUp := sh.MaxUses != nil && sh.UseCount >= *sh.MaxUses
	if sh.RevokedAt != nil || row.Expired || usedUp || row.ProfileDead ||
		row.Card.DeletedAt != nil || row.Card.LockedAt != nil {
		return Shared{}, ErrShareGone
	}
	return Shared{Share: sh, Card: row.Card, ProfileName: row.ProfileName, ProfileImageFileID: row.ProfileImageFileID, ProfileImageFileKey: row.ProfileImageFileKey,
		OwnerUserID: row.OwnerUserID, Public: !row.Card.Private && !row.ProfilePrivate}, nil
}

// SharedView is a live link's card as the signed-in app shows it.
type SharedView struct {
	Shared
	Subscribed bool // the acting profile has saved the card
	Own        bool // the card is the caller's own
}

// Open answers getCardShare: the card of a live link, whether the acting profile saved it. Across
// a BLOCK in either direction the link is as if unknown.
func (s *Shares) Open(ctx context.Context, v access.Caller, token string) (SharedView, error) {
	sh, err := s.Resolve(ctx, token)
	if err != nil {
		return SharedView{}, err
	}
	row, facts, err := s.cards.load(ctx, s.cards.q, v, sh.Card.ID)
	if err != nil {
		return SharedView{}, err
	}
	if facts.Profile.FromViewer == access.Block || facts.Profile.ToViewer == access.Block {
		return SharedView{}, domain.NotFound("The share link")
	}
	return SharedView{Shared: sh, Subscribed: row.Subscribed, Own: v.UserID == sh.OwnerUserID}, nil
}

// liveShareInTx checks, inside a subscribe transaction, that token is a live link of cardID and
// locks it so that counting its use cannot race past max_uses.
func liveShareInTx(ctx context.Context, q *db.Queries, token string, cardID int64) (int64, error) {
	sh, err := resolveShare(ctx, q, token)
	if err != nil {
		return 0, err
	}
	if sh.Card.ID != cardID {
		return 0, domain.NotFound("The share link")
	}
	if _, err := q.LockCardShare(ctx, sh.Share.ID); err != nil {
		return 0, fmt.Errorf("lock share: %w", err)
	}
	// Re-read under the lock: a concurrent save may have used the last use meanwhile.
	if _, err := resolveShare(ctx, q, token); err != nil {
		return 0, err
	}
	return sh.Share.ID, nil
}
