package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/qgate/qgate/pkg/client"
)

func deadLettersGroup() *group {
	return &group{name: "dead-letters", summary: "deliveries qgate gave up on: list and replay them (support key)", commands: []*command{
		{name: "list", summary: "list dead letters", nargs: [2]int{0, 0}, run: deadLettersList, flags: searchFlags,
			help: "--since and --until take a time (2026-11-01T00:00:00Z) or an age (90m, 2h, 7d)."},
		{name: "replay", args: "(--id ID … | --destination D [--reason R])", summary: "send dead letters again (asks first unless --yes)", nargs: [2]int{0, 0}, run: deadLettersReplay,
			help: "Replay sends each dead letter again with its stored payload and the same Idempotency-Key, with a fresh\n" +
				"retry window. Select by --id (repeatable) or by --destination with an optional --reason, --since and\n" +
				"--until, not both. Deliveries that are no longer dead-lettered are left alone: replaying twice is harmless.",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.Var(&o.ids, "id", "a delivery `ID` to replay (repeat the flag for more)")
				fs.StringVar(&o.destination, "destination", "", "replay this destination's dead letters (`ID` or name)")
				fs.StringVar(&o.reason, "reason", "", "only those dead-lettered for this reason")
				fs.StringVar(&o.since, "since", "", "only those changed at or after `TIME` (RFC 3339 or an age)")
				fs.StringVar(&o.until, "until", "", "only those changed before `TIME`")
				fs.BoolVar(&o.yes, "yes", false, "do not ask for confirmation")
				fs.BoolVar(&o.force, "force", false, "replay also dead letters whose destination already received a newer update of the same profile (they are skipped otherwise: order per profile)")
			}},
	}}
}

func deadLettersList(ctx context.Context, s *session, _ []string) error {
	f, err := s.filters(ctx)
	if err != nil {
		return err
	}
	p, err := s.collect(func(cursor string) (*client.DeliveryPage, error) {
		return s.c.DeadLetters(ctx, client.DeadLetterQuery{DestinationID: f.destinationID, Identity: f.identity, Reason: s.o.reason,
			Since: f.since, Until: f.until, Limit: s.o.limit, Cursor: cursor})
	})
	if err != nil {
		return err
	}
	return s.showPage(ctx, p, "dead letters")
}

func deadLettersReplay(ctx context.Context, s *session, _ []string) error {
	byID, byFilter := len(s.o.ids) > 0, s.o.destination != ""
	switch {
	case byID && byFilter:
		return usagef("give --id or --destination, not both")
	case !byID && !byFilter:
		return usagef("say what to replay: --id ID (repeatable) or --destination D [--reason R]")
	case byID && (s.o.reason != "" || s.o.since != "" || s.o.until != ""):
		return usagef("--reason, --since and --until select with --destination, not with --id")
	}
	req := client.ReplayRequest{Force: s.o.force}
	var question string
	if byID {
		req.DeliveryIDs = s.o.ids
		question = fmt.Sprintf("Replay %d dead letter(s): %s?", len(s.o.ids), strings.Join(s.o.ids, ", "))
	} else {
		f, err := s.filters(ctx)
		if err != nil {
			return err
		}
		rf := &client.ReplayFilter{DestinationID: f.destinationID, Reason: s.o.reason}
		if !f.since.IsZero() {
			rf.Since = &f.since
		}
		if !f.until.IsZero() {
			rf.Until = &f.until
		}
		req.Filter = rf
		// Count what would go, so the question says how much.
		n := 0
		for cursor := ""; ; {
			p, err := s.c.DeadLetters(ctx, client.DeadLetterQuery{DestinationID: f.destinationID, Reason: s.o.reason,
				Since: f.since, Until: f.until, Limit: 200, Cursor: cursor})
			if err != nil {
				return err
			}
			n += len(p.Deliveries)
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if n == 0 {
			fmt.Fprintln(s.stderr, "no dead letters match; nothing to replay")
			if s.json() {
				return printJSON(s.stdout, client.ReplayResult{DeliveryIDs: []string{}})
			}
			return nil
		}
		sel := "destination " + s.o.destination
		if s.o.reason != "" {
			sel += ", reason " + s.o.reason
		}
		question = fmt.Sprintf("Replay %d dead letter(s) of %s?", n, sel)
	}
	if err := s.confirm(question); err != nil {
		return err
	}
	r, err := s.c.ReplayDeadLetters(ctx, req)
	if err != nil {
		return err
	}
	if s.json() {
		if r.DeliveryIDs == nil {
			r.DeliveryIDs = []string{}
		}
		return printJSON(s.stdout, r)
	}
	fmt.Fprintf(s.stdout, "replayed %d dead letter(s)\n", r.Replayed)
	for _, id := range r.DeliveryIDs {
		fmt.Fprintln(s.stdout, "  "+id)
	}
	for _, sk := range r.Skipped {
		fmt.Fprintf(s.stdout, "skipped %s: %s (newer update %s already delivered; --force replays it anyway)\n", sk.DeliveryID, sk.Reason, sk.NewerUpdateID)
	}
	if left := len(s.o.ids) - r.Replayed - len(r.Skipped); byID && left > 0 {
		fmt.Fprintf(s.stderr, "%d of the given deliveries were not dead-lettered (or unknown) and were left alone\n", left)
	}
	return nil
}
