package bench

import "fmt"

// Audience returns the audience ID of benchmark destination k: a UUID-shaped ID unique to k.
func Audience(k int) string { return fmt.Sprintf("%08x-18e1-48a6-9bda-d68547861283", k) }

// AppendRoutedProfile appends profile number i as AppendProfile does, but member of exactly one
// audience, Audience(aud): with one destination per audience, the profile fans out to exactly
// one destination. Its email is person<i>@example.com (see ProfileNumber).
func AppendRoutedProfile(dst []byte, i, aud int) []byte {
	return fmt.Appendf(dst, `{"person":{"name":{"firstName":"Dave","lastName":"Smith%d"}},`+
		`"mobilePhone":{"number":"0123456789"},`+
		`"identityMap":{"Email":[{"id":"person%d@example.com"}],"ECID":[{"id":"4587%034d"}]},`+
		`"segmentMembership":{"ups":{"%s":{"lastQualificationTime":"2023-09-05T10:43:55.602687Z","status":"realized"}}},`+
		`"loyalty":{"tier":"gold","points":%d,"memberSince":"2019-04-01"},`+
		`"preferences":{"language":"en-GB","channels":["email","sms"],"marketingOptIn":true},`+
		`"homeAddress":{"city":"London","postalCode":"SW1A 1AA","country":"GB"}}`,
		i, i, i, Audience(aud), i%100000)
}

// AppendRoutedBody appends a request body of batch profiles first..first+batch-1, profile i in
// audience i % audiences: the single-object form when batch is 1, else {"profiles": [...]}.
func AppendRoutedBody(dst []byte, first, batch, audiences int) []byte {
	if batch == 1 {
		return AppendRoutedProfile(dst, first, first%audiences)
	}
	dst = append(dst, `{"profiles":[`...)
	for i := range batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendRoutedProfile(dst, first+i, (first+i)%audiences)
	}
	return append(dst, "]}"...)
}
