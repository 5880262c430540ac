package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/qgate/qgate/pkg/client"
)

func statsGroup() *group {
	return &group{name: "stats", summary: "a destination's figures over a window (support or operator key)", commands: []*command{
		{name: "", args: "DESTINATION", summary: "show a destination's figures: outcomes, latency, backlog, circuit (by ID, or by name with an operator key; a notification channel by its ID, nch_…)", nargs: [2]int{1, 1}, run: stats,
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.window, "window", "24h", "the `WINDOW`: 1h, 24h or 7d")
			}},
	}}
}

func stats(ctx context.Context, s *session, args []string) error {
	switch s.o.window {
	case client.Window1h, client.Window24h, client.Window7d:
	default:
		return usagef("--window %q: want 1h, 24h or 7d", s.o.window)
	}
	if strings.HasPrefix(args[0], "nch_") {
		// A survey-watch notification channel: a lane of the delivery engine.
		st, err := s.c.ChannelStats(ctx, args[0], s.o.window)
		if err != nil {
			return err
		}
		if s.json() {
			return printJSON(s.stdout, st)
		}
		printStats(s, "channel", st.DestinationID, st)
		return nil
	}
	id, err := s.resolve(ctx, args[0])
	if err != nil {
		return err
	}
	st, err := s.c.DestinationStats(ctx, id, s.o.window)
	if err != nil {
		return err
	}
	if s.json() {
		return printJSON(s.stdout, st)
	}
	printStats(s, "destination", named(s.destName(ctx, st.DestinationID), st.DestinationID), st)
	return nil
}

// printStats prints a lane's figures as fields; what is "destination" or "channel".
func printStats(s *session, what, name string, st *client.DestinationStats) {
	circuit := st.Circuit.State
	if st.Circuit.Since != nil {
		circuit += " since " + tsp(st.Circuit.Since)
	}
	fields(s.stdout,
		what, name, "window", st.Window+" (since "+ts(st.Since)+")", "paused", strconv.FormatBool(st.Paused),
		"circuit", circuit, "received", strconv.Itoa(st.Received), "by status", counts(st.ByStatus),
		"excluded by reason", counts(st.ExcludedByReason), "dead-lettered by reason", counts(st.DeadLetteredByReason),
		"attempt latency", percentiles(st.AttemptLatencyMs), "end-to-end latency", percentiles(st.EndToEndLatencyMs),
		"backlog", strconv.Itoa(st.Backlog), "parked", strconv.Itoa(st.Parked))
}

// named is "nps follow-up (dst_…)", or the ID alone when the name is unknown.
func named(name, id string) string {
	if name == id {
		return id
	}
	return name + " (" + id + ")"
}

func percentiles(p client.Percentiles) string {
	if p.Samples == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s, p99 %s (%d samples)", ms(p.P50), ms(p.P99), p.Samples)
}

func alertsGroup() *group {
	return &group{name: "alerts", summary: "what went wrong lately: the alerts fired to webhooks (support or operator key)", commands: []*command{
		{name: "list", summary: "list the alerts fired, newest first", nargs: [2]int{0, 0}, run: alertsList,
			help: "Reads GET /v1/alerts: each alert (circuit.opened, destination.auth, deadletters.threshold, …) with\n" +
				"its delivery to the subscription's webhook. On a qgate without that endpoint it shows each\n" +
				"destination's circuit state from GET /v1/destinations/{id}/stats instead.",
			flags: func(fs *flag.FlagSet, o *opts) {
				fs.StringVar(&o.destination, "destination", "", "only this destination's alerts (`ID` or name)")
				fs.StringVar(&o.event, "event", "", "only this `EVENT`, such as circuit.opened")
				fs.StringVar(&o.status, "status", "", "only alerts whose webhook delivery is pending, retrying, delivered or dead_lettered")
				fs.IntVar(&o.limit, "limit", 0, "at most this many, 1 to 500 (default: the server's, 50)")
			}},
	}}
}

func alertsList(ctx context.Context, s *session, _ []string) error {
	f, err := s.filters(ctx)
	if err != nil {
		return err
	}
	alerts, err := s.c.ListAlerts(ctx, client.AlertQuery{DestinationID: f.destinationID, Event: s.o.event, Status: s.o.status, Limit: s.o.limit})
	var ae *client.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.HasCode("route_not_found") {
		return s.circuits(ctx, f.destinationID)
	}
	if err != nil {
		return err
	}
	if s.json() {
		if alerts == nil {
			alerts = []client.Alert{}
		}
		return printJSON(s.stdout, map[string]any{"alerts": alerts})
	}
	if len(alerts) == 0 {
		fmt.Fprintln(s.stderr, "no alerts")
		return nil
	}
	t := newTable(s.stdout, "FIRED", "EVENT", "DESTINATION", "WEBHOOK", "ATTEMPTS", "NEXT ATTEMPT", "MESSAGE")
	for _, a := range alerts {
		name := a.DestinationName
		if name == "" {
			name = a.DestinationID
		}
		hook := a.Status
		if a.LastStatusCode != 0 && a.Status != "delivered" {
			hook += fmt.Sprintf(" (last %d)", a.LastStatusCode)
		}
		t.row(ts(a.FiredAt), a.Event, name, hook, strconv.Itoa(a.Attempts), tsp(a.NextAttemptAt), a.Message)
	}
	t.flush()
	return nil
}

// circuits is `alerts list` on a qgate without GET /v1/alerts: every destination's circuit.
func (s *session) circuits(ctx context.Context, only string) error {
	fmt.Fprintln(s.stderr, "this qgate has no GET /v1/alerts; showing each destination's circuit instead")
	type row struct {
		DestinationID string         `json:"destinationId"`
		Name          string         `json:"name"`
		Paused        bool           `json:"paused"`
		Circuit       client.Circuit `json:"circuit"`
	}
	rows := []row{}
	for d, err := range s.c.AllDestinations(ctx, 0) {
		if err != nil {
			return err
		}
		if only != "" && d.ID != only {
			continue
		}
		st, err := s.c.DestinationStats(ctx, d.ID, client.Window1h)
		if err != nil {
			return err
		}
		rows = append(rows, row{d.ID, d.Name, st.Paused, st.Circuit})
	}
	if s.json() {
		return printJSON(s.stdout, map[string]any{"circuits": rows})
	}
	t := newTable(s.stdout, "DESTINATION", "NAME", "CIRCUIT", "SINCE", "PAUSED")
	for _, r := range rows {
		t.row(r.DestinationID, r.Name, r.Circuit.State, tsp(r.Circuit.Since), strconv.FormatBool(r.Paused))
	}
	t.flush()
	return nil
}
