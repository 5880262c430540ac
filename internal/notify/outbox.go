package notify

import (
	"context"
	"time"
)

// Outbox is the Publisher domains hand notifications to: it picks the subscribed channels
// and records everything once in the store; the Sender delivers from there.
type Outbox struct {
	Store Store
	Now   func() time.Time
	// Wake is called when something new was recorded (the local sender looks at once).
	Wake func()
}

// Publish records msgs for every channel that wants them and returns how many were new.
func (o *Outbox) Publish(ctx context.Context, msgs []Message) (int, error) {
	chans, err := o.Store.ListChannels(ctx)
	if err != nil {
		return 0, err
	}
	out := make([]Outgoing, 0, len(msgs))
	for _, m := range msgs {
		og := Outgoing{Message: m}
		for _, c := range chans {
			if c.Wants(m) {
				og.ChannelIDs = append(og.ChannelIDs, c.ID)
			}
		}
		out = append(out, og)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	n, err := o.Store.PublishNotifications(ctx, out, now().UTC())
	if n > 0 && o.Wake != nil {
		o.Wake()
	}
	return n, err
}

// Cancel stops the queued messages of types about subject (a recipient who finished gets no
// reminder that was still waiting for a retry).
func (o *Outbox) Cancel(ctx context.Context, connID, subject string, types []string, reason string) (int, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return o.Store.CancelNotifications(ctx, connID, subject, types, reason, now().UTC())
}
