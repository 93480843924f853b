// Package card owns cards and subscriptions (saved cards): docs/product.md §6.
package card

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bca-app/backend/gen/db"
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/domain"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/outbox"
	"github.com/bca-app/backend/internal/profile"
	"github.com/bca-app/backend/internal/txn"
)

// Service implements cards and subscriptions.
type Service struct {
	q     *db.Queries
	out   txn.Runner
	files *files.Service
	now   func() time.Time
}

// Deps are the collaborators of the Service.
type Deps struct {
	Pool *pgxpool.Pool // required
	// Notifier hears the sync bumps after commit; nil drops them (the worker polls the table).
	Notifier outbox.Notifier
	// Files checks and releases preview images; nil only where no image is ever used (package
	// tests).
	Files *files.Service
	// Now is the clock the service compares times with (share-link expiry); nil is time.Now.
	Now func() time.Time
}

// New wires a Service; it refuses missing required dependencies.
func New(d Deps) (*Service, error) {
	if err := domain.RequireDeps("card", map[string]any{"Pool": d.Pool}); err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{q: db.New(d.Pool), out: txn.Runner{Pool: d.Pool, Notifier: d.Notifier}, files: d.Files, now: d.Now}, nil
}

// Input is a new card or a partial change of one.
type Input struct {
	Name          *string
	Data          any // a JSON object
	Private       *bool
	PreviewFileID *int64
}

func (s *Service) cleanInput(ctx context.Context, userID int64, in Input) (name *string, data []byte, err error) {
	if in.Name != nil {
		n, err := domain.Name("name", *in.Name, domain.MaxNameLength)
		if err != nil {
			return nil, nil, err
		}
		name = &n
	}
	switch d := in.Data.(type) {
	case nil:
	case json.RawMessage: // a multipart form's data field, as sent
		if data, err = domain.JSONObject("data", d); err != nil {
			return nil, nil, err
		}
	default:
		if data, err = domain.JSONObjectOf("data", d); err != nil {
			return nil, nil, err
		}
	}
	if in.PreviewFileID != nil {
		if _, err := s.files.Owned(ctx, *in.PreviewFileID, userID); err != nil {
			if domain.IsKind(err, domain.KindNotFound) {
				return nil, nil, domain.Invalid("preview_file_id", "must be an image you uploaded")
			}
			return nil, nil, err
		}
	}
	return name, data, nil
}

// Create adds a card to the acting profile.
func (s *Service) Create(ctx context.Context, v access.Caller, in Input) (db.Card, error) {
	if in.Name == nil {
		return db.Card{}, domain.Invalid("name", "is required")
	}
	name, data, err := s.cleanInput(ctx, v.UserID, in)
	if err != nil {
		return db.Card{}, err
	}
	if data == nil {
		data = []byte("{}")
	}
	var c db.Card
	err = s.out.Do(ctx, func(t *txn.Tx) error {
		c, err = t.Q.CreateCard(ctx, db.CreateCardParams{ProfileID: v.ActingProfileID, Name: *name, Data: data,
			PreviewFileID: in.PreviewFileID, Private: in.Private != nil && *in.Private})
		if err != nil {
			return fmt.Errorf("create card: %w", err)
		}
		return t.CardsChanged(ctx, c.ID)
	})
	return c, err
}

// View is a card as a viewer sees it.
type View struct {
	Card       db.Card
	Subscribed bool
}

// Get reads a card under the rules of access.CanReadCard.
func (s *Service) Get(ctx context.Context, v access.Caller, cardID int64) (View, error) {
	row, facts, err := s.load(ctx, s.q, v, cardID)
	if err != nil {
		return View{}, err
	}
	if !access.CanReadCard(v, facts) {
		return View{}, domain.NotFound("The card")
	}
	return View{Card: row.Card, Subscribed: row.Subscribed}, nil
}

func (s *Service) load(ctx context.Context, q *db.Queries, v access.Caller, cardID int64) (db.GetCardViewRow, access.CardFacts, error) {
	row, err := q.GetCardView(ctx, db.GetCardViewParams{CardID: cardID, ViewerProfileID: v.ActingProfileID, ViewerUserID: v.UserID})
	if errors.Is(err, pgx.ErrNoRows) {
		return row, access.CardFacts{}, domain.NotFound("The card")
	}
	if err != nil {
		return row, access.CardFacts{}, fmt.Errorf("load card %d: %w", cardID, err)
	}
	facts := access.CardFacts{
		Profile: access.FactsOf(row.OwnerUserID, row.ProfilePrivate, row.ProfileLive, row.FromViewer, row.ToViewer),
		Private: row.Card.Private, Deleted: row.Card.DeletedAt != nil, Locked: row.Card.LockedAt != nil, Subscribed: row.Subscribed,
	}
	return row, facts, nil
}

// ListOfProfile lists the cards of a profile the viewer may see: all live cards for the owner
// and admins; public ones (and private ones the acting profile subscribes to) for viewers who
// may fully read the profile.
func (s *Service) ListOfProfile(ctx context.Context, v access.Caller, profiles *profile.Service, profileID, afterID int64, limit int) ([]db.Card, error) {
	view, err := profiles.Get(ctx, v, profileID)
	if err != nil {
		return nil, err
	}
	privileged := view.Mine || v.Admin
	if !privileged && (view.Visibility != access.Full || view.Profile.DeletedAt != nil) {
		return []db.Card{}, nil
	}
	rows, err := s.q.ListCardsOfProfile(ctx, db.ListCardsOfProfileParams{
		ProfileID: profileID, IncludeLocked: privileged, IncludePrivate: privileged, ViewerProfileID: v.ActingProfileID,
		AfterID: afterID, MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list cards: %w", err)
	}
	return rows, nil
}

// Update changes the caller's card if ifMatch names its current version.
func (s *Service) Update(ctx context.Context, userID, cardID int64, ifMatch *string, in Input) (db.Card, error) {
	version, err := domain.IfMatch(ifMatch)
	if err != nil {
		return db.Card{}, err
	}
	name, data, err := s.cleanInput(ctx, userID, in)
	if err != nil {
		return db.Card{}, err
	}
	var c db.Card
	var previous *int64
	err = s.out.Do(ctx, func(t *txn.Tx) error {
		return domain.Conditional(version, func() (int64, error) {
			cur, err := s.lockOwned(ctx, t.Q, userID, cardID)
			previous = cur.PreviewFileID
			return cur.Version, err
		}, func(current int64) error {
			var err error
			c, err = t.Q.UpdateCard(ctx, db.UpdateCardParams{ID: cardID, UserID: userID, Version: current,
				Name: name, Data: data, Private: in.Private, PreviewFileID: in.PreviewFileID})
			if err != nil {
				return fmt.Errorf("update card: %w", err)
			}
			if prev := previous; prev != nil && in.PreviewFileID != nil && *prev != *in.PreviewFileID {
				t.AfterCommit(func(ctx context.Context) { s.files.ReleaseAfterCommit(ctx, *prev) })
			}
			return t.CardsChanged(ctx, c.ID)
		})
	})
	return c, err
}

// lockOwned takes the row lock of the caller's live card for a conditional write; absent,
// foreign and deleted cards are not found.
func (s *Service) lockOwned(ctx context.Context, q *db.Queries, userID, cardID int64) (db.Card, error) {
	c, err := q.LockOwnedCard(ctx, db.LockOwnedCardParams{ID: cardID, UserID: userID})
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && c.DeletedAt != nil) {
		return db.Card{}, domain.NotFound("The card")
	}
	if err != nil {
		return db.Card{}, fmt.Errorf("load card: %w", err)
	}
	return c, nil
}

// Delete soft-deletes the caller's card; subscribers keep a tombstone.
func (s *Service) Delete(ctx context.Context, userID, cardID int64, ifMatch *string) error {
	version, err := domain.IfMatch(ifMatch)
	if err != nil {
		return err
	}
	return s.out.Do(ctx, func(t *txn.Tx) error {
		return domain.Conditional(version, func() (int64, error) {
			cur, err := s.lockOwned(ctx, t.Q, userID, cardID)
			return cur.Version, err
		}, func(current int64) error {
			c, err := t.Q.SoftDeleteCard(ctx, db.SoftDeleteCardParams{ID: cardID, UserID: userID, Version: current})
			if err != nil {
				return fmt.Errorf("delete card: %w", err)
			}
			return t.CardsChanged(ctx, c.ID)
		})
	})
}

// Subscription is the acting profile's subscription state for a card.
type Subscription struct {
	CardID, ProfileID int64
	Subscribed        bool
	Row               *db.CardSubscription
}

// GetSubscription answers "am I subscribed?" for a card the acting profile may read.
func (s *Service) GetSubscription(ctx context.Context, v access.Caller, cardID int64) (Subscription, error) {
	row, facts, err := s.load(ctx, s.q, v, cardID)
	if err != nil {
		return Subscription{}, err
	}
	if !access.CanReadCard(v, facts) {
		return Subscription{}, domain.NotFound("The card")
	}
	out := Subscription{CardID: cardID, ProfileID: v.ActingProfileID, Subscribed: row.Subscribed}
	if row.Subscribed {
		sub, err := s.q.GetSubscription(ctx, db.GetSubscriptionParams{ProfileID: v.ActingProfileID, CardID: cardID})
		if err != nil {
			return Subscription{}, fmt.Errorf("load subscription: %w", err)
		}
		out.Row = &sub
	}
	return out, nil
}

// Subscribe saves the card for the acting profile; subscribing twice is not an error. It never
// creates follows. shareToken ("" for none) is the token of a share link of the card: with a live
// one a private card may be saved too, and a new save counts one use of the link
// (docs/product.md §6 "Sharing").
func (s *Service) Subscribe(ctx context.Context, v access.Caller, cardID int64, shareToken string) (Subscription, error) {
	var out Subscription
	err := s.out.Do(ctx, func(t *txn.Tx) error {
		var shareID int64
		if shareToken != "" {
			id, err := liveShareInTx(ctx, t.Q, shareToken, cardID)
			if err != nil {
				return err
			}
			shareID = id
		}
		card, _, err := s.load(ctx, t.Q, v, cardID)
		if err != nil {
			return err
		}
		// The pair lock orders this against a BLOCK between the two profiles; the card is read
		// again under it, so a block committed meanwhile is seen.
		if err := profile.LockPair(ctx, t.Q, v.ActingProfileID, card.Card.ProfileID); err != nil {
			return err
		}
		_, facts, err := s.load(ctx, t.Q, v, cardID)
		if err != nil {
			return err
		}
		refusal := access.SubscribeRefusal(v, facts)
		if shareID != 0 {
			refusal = access.SubscribeThroughLinkRefusal(v, facts)
		}
		switch refusal {
		case "":
		case "card.own_card":
			return domain.E(domain.KindConflict, "card.own_card", "You cannot subscribe to a card of your own.")
		default:
			// A private card is saved only through a link its owner shares; to everyone else it
			// is as if absent, like cards they may not read.
			return domain.NotFound("The card")
		}
		row, err := t.Q.Subscribe(ctx, db.SubscribeParams{ProfileID: v.ActingProfileID, CardID: cardID})
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		sub := db.CardSubscription{ID: row.ID, CardID: row.CardID, ProfileID: row.ProfileID, Version: row.Version, CreatedAt: row.CreatedAt, ModifiedAt: row.ModifiedAt}
		out = Subscription{CardID: cardID, ProfileID: v.ActingProfileID, Subscribed: true, Row: &sub}
		if !row.Created {
			return nil
		}
		if shareID != 0 {
			n, err := t.Q.CountCardShareUse(ctx, shareID)
			if err != nil {
				return fmt.Errorf("count share use: %w", err)
			}
			if n == 0 { // cannot happen under the row lock; refuse rather than over-use the link
				return ErrShareGone
			}
		}
		return t.OwnersChanged(ctx, v.ActingProfileID)
	})
	return out, err
}

// Unsubscribe removes the card from the acting profile's saved cards (idempotent).
func (s *Service) Unsubscribe(ctx context.Context, v access.Caller, cardID int64) error {
	return s.out.Do(ctx, func(t *txn.Tx) error {
		n, err := t.Q.Unsubscribe(ctx, db.UnsubscribeParams{ProfileID: v.ActingProfileID, CardID: cardID})
		if err != nil {
			return fmt.Errorf("unsubscribe: %w", err)
		}
		if n == 0 {
			if _, _, err := s.load(ctx, t.Q, v, cardID); err != nil {
				return err
			}
			return nil
		}
		return t.OwnersChanged(ctx, v.ActingProfileID)
	})
}
