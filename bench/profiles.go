// Package bench holds qgate's load generator: realistic profile bodies, a closed-loop HTTP
// driver with latency quantiles, and the decode-only floor server it is compared with. The
// qbench command (bench/cmd/qbench) runs it against qgate processes; `make bench` runs qbench.
package bench

import (
	"fmt"
	"strconv"
)

// AppendProfile appends profile number i: the brief's sample shape (identities, two audiences,
// a few nested camelCase attributes), about 600 bytes, with an email and ECID unique to i so
// that profile keys spread over the topic's partitions.
func AppendProfile(dst []byte, i int) []byte {
	return fmt.Appendf(dst, `{"person":{"name":{"firstName":"Dave","lastName":"Smith%d"}},`+
		`"mobilePhone":{"number":"0123456789"},`+
		`"identityMap":{"Email":[{"id":"person%d@example.com"}],"ECID":[{"id":"4587%034d"}]},`+
		`"segmentMembership":{"ups":{"046456e3b-18e1-48a6-9bda-d68547861283":{"lastQualificationTime":"2023-09-05T10:43:55.602687Z","status":"realized"},`+
		`"7a1b2c3d-18e1-48a6-9bda-d68547861284":{"lastQualificationTime":"2023-09-06T08:00:00Z","status":"existing"}}},`+
		`"loyalty":{"tier":"gold","points":%d,"memberSince":"2019-04-01"},`+
		`"preferences":{"language":"en-GB","channels":["email","sms"],"marketingOptIn":true},`+
		`"homeAddress":{"city":"London","postalCode":"SW1A 1AA","country":"GB"}}`,
		i, i, i, i%100000)
}

// Body returns one request body: profile first alone when batch is 1 (the single-object form),
// else {"profiles": [...]} with profiles first .. first+batch-1.
func Body(first, batch int) []byte {
	if batch == 1 {
		return AppendProfile(nil, first)
	}
	b := make([]byte, 0, batch*640+16)
	b = append(b, `{"profiles":[`...)
	for i := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendProfile(b, first+i)
	}
	return append(b, "]}"...)
}

// Bodies returns n bodies of batch profiles each, with distinct profiles throughout.
func Bodies(n, batch int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = Body(i*batch, batch)
	}
	return out
}

// ArrayBodies is Bodies in the peer's form (bench/peer): the same profiles, a batch being a
// bare JSON array [...] instead of {"profiles": [...]}; batch 1 is the single object as in Body.
func ArrayBodies(n, batch int) [][]byte {
	out := Bodies(n, batch)
	if batch == 1 {
		return out
	}
	for i, b := range out {
		out[i] = AsArray(b)
	}
	return out
}

// AsArray turns a {"profiles":[...]} body into the bare array [...] in place (it returns a
// subslice of b); any other body is returned unchanged.
func AsArray(b []byte) []byte {
	const pre = `{"profiles":`
	if len(b) > len(pre)+1 && string(b[:len(pre)]) == pre && b[len(b)-1] == '}' {
		return b[len(pre) : len(b)-1]
	}
	return b
}

// acceptedCount reads the "accepted" count at the top of a response body without decoding
// the rest: qgate's and the floor's bodies both start with {"accepted":N. It returns -1 when
// the body does not.
func acceptedCount(body []byte) int {
	const prefix = `{"accepted":`
	if len(body) < len(prefix) || string(body[:len(prefix)]) != prefix {
		return -1
	}
	end := len(prefix)
	for end < len(body) && body[end] >= '0' && body[end] <= '9' {
		end++
	}
	n, err := strconv.Atoi(string(body[len(prefix):end]))
	if err != nil {
		return -1
	}
	return n
}
