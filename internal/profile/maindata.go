package profile

import (
	"encoding/json"
	"math"
)

// Contacts are the main value of each known contact field of a profile.
type Contacts struct {
	Email, Phone, SNS, Address *string
}

type labelled struct {
	Index int             `json:"index"`
	Value json.RawMessage `json:"value"`
}

// MainContacts derives the main email, phone, sns and address from a profile's data: for each
// field, the value of its entry with the lowest index (ties broken by label, so the result never
// depends on map order). Absent or malformed fields give nil.
func MainContacts(data []byte) Contacts {
	var fields map[string]labelled
	if json.Unmarshal(data, &fields) != nil {
		return Contacts{}
	}
	return Contacts{
		Email:   mainValue(fields["email"]),
		Phone:   mainValue(fields["phone"]),
		SNS:     mainValue(fields["sns"]),
		Address: mainValue(fields["address"]),
	}
}

func mainValue(f labelled) *string {
	var entries map[string]labelled
	if len(f.Value) == 0 || json.Unmarshal(f.Value, &entries) != nil {
		return nil
	}
	best, bestLabel, found := math.MaxInt, "", (*string)(nil)
	for label, e := range entries {
		var v string
		if json.Unmarshal(e.Value, &v) != nil {
			continue
		}
		if e.Index < best || (e.Index == best && label < bestLabel) {
			best, bestLabel = e.Index, label
			found = &v
		}
	}
	return found
}
