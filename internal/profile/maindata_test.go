package profile

import (
	"encoding/json"
	"testing"
)

func TestMainContacts(t *testing.T) {
	data := []byte(`{
		"phone": {"index": 1, "value": {"home": {"index": 2, "value": "+82 2 000"}, "mobile": {"index": 0, "value": "+82 10 111"}}},
		"email": {"index": 0, "value": {"work": {"index": 3, "value": "w@x.test"}, "b": {"index": 3, "value": "b@x.test"}}},
		"sns": {"index": 2, "value": {}},
		"website": {"index": 3, "value": {"main": {"index": 0, "value": "https://x.test"}}}
	}`)
	c := MainContacts(data)
	if c.Phone == nil || *c.Phone != "+82 10 111" {
		t.Errorf("phone: lowest index wins, got %v", c.Phone)
	}
	if c.Email == nil || *c.Email != "b@x.test" {
		t.Errorf("email: ties broken by label, got %v", c.Email)
	}
	if c.SNS != nil || c.Address != nil {
		t.Errorf("empty or absent fields give nil: %v %v", c.SNS, c.Address)
	}
	if got := MainContacts([]byte(`not json`)); got != (Contacts{}) {
		t.Errorf("malformed data: %+v", got)
	}
	// The same data decoded into another type of the entry's layout (the API's) gives the same
	// contacts.
	type apiEntry struct {
		Index int    `json:"index"`
		Value string `json:"value"`
	}
	var decoded map[string]struct{ Value map[string]apiEntry }
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	other := ContactsOf(func(f string) map[string]apiEntry { return decoded[f].Value })
	for name, pair := range map[string][2]*string{"email": {c.Email, other.Email}, "phone": {c.Phone, other.Phone}, "sns": {c.SNS, other.SNS}, "address": {c.Address, other.Address}} {
		if (pair[0] == nil) != (pair[1] == nil) || (pair[0] != nil && *pair[0] != *pair[1]) {
			t.Errorf("%s: %v from bytes, %v from decoded data", name, pair[0], pair[1])
		}
	}
}
