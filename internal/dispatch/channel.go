package dispatch

import (
	"context"
	"strings"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
)

// ChannelPrefix starts the ID of every notification channel (internal/notify). A lane whose
// ID has it is a channel lane: the same claim, rate limiter, circuit breaker, retries, park,
// dead letters and replay as a destination's, but the channel is read from Options.Channels
// and the request is built and signed there (Standard Webhooks, at send time).
const ChannelPrefix = "nch_"

// Channels is what channel lanes need: the channel as a lane target and the request to it.
type Channels interface {
	// Channel returns the channel as a target (ID, Name, URL, RateLimitPerMinute); ok is
	// false when it does not exist or was deleted, err when the store could not say.
	Channel(ctx context.Context, id string) (dest destination.Destination, ok bool, err error)
	// Send makes one attempt at delivering job to the channel and classifies its outcome
	// (qualtrics.Classify).
	Send(ctx context.Context, ch destination.Destination, job delivery.Job) qualtrics.Result
}

func isChannel(id string) bool { return strings.HasPrefix(id, ChannelPrefix) }

// target returns what the lane of id sends to: a destination from the registry, or a
// notification channel from Options.Channels (err: the store could not say; try again).
func (d *Dispatcher) target(ctx context.Context, id string) (destination.Destination, bool, error) {
	if !isChannel(id) || d.opts.Channels == nil {
		dest, ok := d.reg.Get(id)
		return dest, ok, nil
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	return d.opts.Channels.Channel(ctx, id)
}

// targetName is the name of the lane's destination or channel for logs, or its ID. A
// destination's comes from the registry (in memory); a channel's as the last attempt read it:
// the breaker's state callback runs under its lock and must not read the store.
func (l *lane) targetName() string {
	if !isChannel(l.destID) {
		if dest, ok := l.d.reg.Get(l.destID); ok {
			return dest.Name
		}
	} else if name := l.name.Load(); name != nil {
		return *name
	}
	return l.destID
}

// send makes one attempt at delivering job to dest.
func (d *Dispatcher) send(ctx context.Context, dest destination.Destination, job delivery.Job) qualtrics.Result {
	if isChannel(job.DestinationID) && d.opts.Channels != nil {
		return d.opts.Channels.Send(ctx, dest, job)
	}
	return d.sender.Send(ctx, qualtrics.Request{URL: dest.URL, Username: dest.Username, Token: dest.Token, Body: job.Payload, IdempotencyKey: job.DeliveryID})
}
