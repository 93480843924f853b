package profile

import (
	"encoding/json"
	"math"
)

// Contacts are the main value of each known contact field of a profile.
type Contacts struct {
	Email, Phone, SNS, Address *string
}

// Entry is one labelled value of a profile data field: field → {index, value: label → Entry}.
type Entry struct {
	Index int    `json:"index"`
	Value string `json:"value"`
}

// entryLike admits Entry and any type of the same layout, such as the API's generated one, so
// data decoded for a response needs no second decoding for its contacts.
type entryLike interface {
	~struct {
		Index int    `json:"index"`
		Value string `json:"value"`
	}
}

// MainContacts derives the main email, phone, sns and address from a profile's stored data (see
// ContactsOf). Data that does not decode gives no contacts.
func MainContacts(data []byte) Contacts {
	var fields map[string]struct {
		Value map[string]Entry `json:"value"`
	}
	if json.Unmarshal(data, &fields) != nil {
		return Contacts{}
	}
	return ContactsOf(func(field string) map[string]Entry { return fields[field].Value })
}

// ContactsOf derives the contacts from decoded data, entries returning a field's entries: for
// each field, the value of its entry with the lowest index, ties broken by label, so the result
// never depends on map order. An absent or empty field gives nil.
func ContactsOf[E entryLike](entries func(field string) map[string]E) Contacts {
	main := func(field string) *string {
		best, bestLabel, found := math.MaxInt, "", (*string)(nil)
		for label, e := range entries(field) {
			e := Entry(e)
			if e.Index < best || (e.Index == best && label < bestLabel) {
				best, bestLabel = e.Index, label
				found = &e.Value
			}
		}
		return found
	}
	return Contacts{Email: main("email"), Phone: main("phone"), SNS: main("sns"), Address: main("address")}
}
