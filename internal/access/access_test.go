package access

import "testing"

func TestProfileVisibility(t *testing.T) {
	owner := Caller{UserID: 1, ActingProfileID: 10}
	other := Caller{UserID: 2, ActingProfileID: 20}
	admin := Caller{UserID: 3, Admin: true}
	cases := []struct {
		name string
		v    Caller
		f    ProfileFacts
		want Visibility
	}{
		{"owner sees a locked profile", owner, ProfileFacts{OwnerUserID: 1, Locked: true, Private: true}, Full},
		{"admin sees a locked profile", admin, ProfileFacts{OwnerUserID: 1, Locked: true}, Full},
		{"locked is hidden", other, ProfileFacts{OwnerUserID: 1, Locked: true}, Hidden},
		{"target blocks viewer", other, ProfileFacts{OwnerUserID: 1, ToViewer: Block}, Hidden},
		{"public", other, ProfileFacts{OwnerUserID: 1}, Full},
		{"private, no relation", other, ProfileFacts{OwnerUserID: 1, Private: true}, Redacted},
		{"private, pending request grants nothing", other, ProfileFacts{OwnerUserID: 1, Private: true, FromViewer: FollowRequested}, Redacted},
		{"private, accepted follow", other, ProfileFacts{OwnerUserID: 1, Private: true, FromViewer: Follow}, Full},
		{"private, hide still follows", other, ProfileFacts{OwnerUserID: 1, Private: true, FromViewer: Hide}, Full},
		{"private, target follows viewer", other, ProfileFacts{OwnerUserID: 1, Private: true, ToViewer: Follow}, Full},
		{"private, viewer blocks target", other, ProfileFacts{OwnerUserID: 1, Private: true, FromViewer: Block}, Redacted},
	}
	for _, c := range cases {
		if got := Profile(c.v, c.f); got != c.want {
			t.Errorf("%s: got %d, want %d", c.name, got, c.want)
		}
	}
}

func TestCardRules(t *testing.T) {
	v := Caller{UserID: 2, ActingProfileID: 20}
	pub := ProfileFacts{OwnerUserID: 1}
	cases := []struct {
		name    string
		c       CardFacts
		read    bool
		refusal string
	}{
		{"public card", CardFacts{Profile: pub}, true, ""},
		{"private card, not subscribed", CardFacts{Profile: pub, Private: true}, false, "card.private"},
		{"private card, subscribed", CardFacts{Profile: pub, Private: true, Subscribed: true}, true, ""},
		{"deleted card, subscribed tombstone", CardFacts{Profile: pub, Deleted: true, Subscribed: true}, true, "card.not_found"},
		{"locked card", CardFacts{Profile: pub, Locked: true}, false, "card.not_found"},
		{"viewer blocks owner", CardFacts{Profile: ProfileFacts{OwnerUserID: 1, FromViewer: Block}}, true, "card.not_found"},
		{"owner blocks viewer", CardFacts{Profile: ProfileFacts{OwnerUserID: 1, ToViewer: Block}}, false, "card.not_found"},
		{"card of a redacted profile", CardFacts{Profile: ProfileFacts{OwnerUserID: 1, Private: true}}, false, "card.not_found"},
		{"card of a locked profile", CardFacts{Profile: ProfileFacts{OwnerUserID: 1, Locked: true}}, false, "card.not_found"},
		{"own card", CardFacts{Profile: ProfileFacts{OwnerUserID: 2}}, true, "card.own_card"},
	}
	for _, c := range cases {
		if got := CanReadCard(v, c.c); got != c.read {
			t.Errorf("%s: read %v, want %v", c.name, got, c.read)
		}
		if got := SubscribeRefusal(v, c.c); got != c.refusal {
			t.Errorf("%s: refusal %q, want %q", c.name, got, c.refusal)
		}
	}
}

func TestStatusSpelling(t *testing.T) {
	for _, s := range []Status{Follow, Hide, Block, FollowRequested} {
		if got, ok := ParseStatus(s.String()); !ok || got != s {
			t.Errorf("round trip of %v", s)
		}
	}
	if _, ok := ParseStatus("FRIEND"); ok {
		t.Error("unknown status parsed")
	}
}

func TestFactsOf(t *testing.T) {
	f := FactsOf(7, true, false, int16(Follow), int16(Block))
	want := ProfileFacts{OwnerUserID: 7, Private: true, Locked: true, FromViewer: Follow, ToViewer: Block}
	if f != want {
		t.Fatalf("FactsOf = %+v, want %+v", f, want)
	}
	if FactsOf(7, false, true, 0, 0).Locked {
		t.Fatal("a live profile reads as locked")
	}
}
