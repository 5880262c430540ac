package notify

import (
	"context"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// Outbox is the Publisher domains hand notifications to: it picks the subscribed channels,
// renders each message for each channel's kind and records everything once in the store, as
// deliveries of qgate's delivery engine that the channels' lanes send (internal/dispatch).
type Outbox struct {
	Store Store
	Now   func() time.Time
	// Wake is called with the channels that got new deliveries (the local dispatcher looks at
	// their park at once instead of at its next pass).
	Wake func(channelIDs []string)
}

// Publish records msgs for every channel that wants them and returns how many were new.
func (o *Outbox) Publish(ctx context.Context, msgs []Message) (int, error) {
	chans, err := o.Store.ListChannels(ctx)
	if err != nil {
		return 0, err
	}
	out := make([]Outgoing, 0, len(msgs))
	woken := map[string]bool{}
	for _, m := range msgs {
		og := Outgoing{Message: m}
		for _, c := range chans {
			if !c.Wants(m) {
				continue
			}
			payload, err := Render(c.Kind, m)
			if err != nil {
				return 0, err
			}
			og.Deliveries = append(og.Deliveries, Target{ChannelID: c.ID, DeliveryID: delivery.ID(m.ID, c.ID), Payload: payload})
			woken[c.ID] = true
		}
		out = append(out, og)
	}
	n, err := o.Store.PublishNotifications(ctx, out, o.now())
	if n > 0 && o.Wake != nil {
		ids := make([]string, 0, len(woken))
		for id := range woken {
			ids = append(ids, id)
		}
		o.Wake(ids)
	}
	return n, err
}

// Cancel ends the queued deliveries of the messages about subject of the given types (the
// recipient finished): they are excluded with reason recipient_finished and never sent. One
// already in flight may still arrive.
func (o *Outbox) Cancel(ctx context.Context, connID, subject string, types []string, _ string) (int, error) {
	return o.Store.CancelNotifications(ctx, connID, subject, types, ReasonRecipientFinished, o.now())
}

func (o *Outbox) now() time.Time {
	if o.Now != nil {
		return o.Now().UTC()
	}
	return time.Now().UTC()
}
