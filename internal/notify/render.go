package notify

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Render returns what a channel of kind receives for a message: the JSON event for webhooks,
// a readable message with link buttons for Slack and Teams. It is rendered when the message
// is published and kept as the delivery's payload (signed at send time).
func Render(kind string, d Message) ([]byte, error) {
	switch kind {
	case KindSlack:
		var b strings.Builder
		b.WriteString(slackEscape(d.Text))
		for _, l := range d.Links {
			b.WriteString("\n<" + l.URL + "|" + slackEscape(l.Label) + ">")
		}
		return marshal(map[string]any{"text": b.String()})
	case KindTeams:
		var b strings.Builder
		b.WriteString(d.Text)
		for _, l := range d.Links {
			b.WriteString("\n\n[" + l.Label + "](" + l.URL + ")")
		}
		return marshal(map[string]any{"text": b.String()})
	}
	return d.Body, nil
}

// slackEscape escapes Slack's three control characters in text.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// marshal encodes v without HTML escaping (Slack's <url|label> must arrive as written).
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
