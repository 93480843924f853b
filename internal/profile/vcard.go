package profile

import (
	"github.com/bca-app/backend/internal/access"
	"github.com/bca-app/backend/internal/files"
	"github.com/bca-app/backend/internal/vcard"
)

// VCard renders what the viewer may see of a profile as a vCard 4.0 (RFC 6350): the name always,
// and for a fully visible profile the team, description, photo and every contact entry.
func VCard(v View, baseURL string) string {
	p := v.Profile
	c := vcard.Card{Name: p.Name, Rev: p.ModifiedAt}
	if p.ImageFileKey != nil {
		c.PhotoURL = baseURL + files.URL(*p.ImageFileKey)
	}
	if v.Visibility == access.Full {
		if p.TeamName != nil {
			c.Org = *p.TeamName
		}
		if p.Description != nil {
			c.Note = *p.Description
		}
		c.Contacts = vcard.Contacts(p.Data)
	}
	return vcard.Encode(c)
}
