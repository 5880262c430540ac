package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/qgate/qgate/pkg/client"
)

func updatesGroup() *group {
	return &group{name: "updates", summary: "profile updates: where one went (support key)", commands: []*command{
		{name: "get", args: "UPDATE_ID", summary: "show an update's fan-out: each delivery with its status and attempts", nargs: [2]int{1, 1}, run: updatesGet,
			help: "The update ID is the updateId of the ingest answer. It is not found until the update is routed (shortly after ingest)."},
	}}
}

func deliveriesGroup() *group {
	return &group{name: "deliveries", summary: "deliveries: did a profile reach a destination? (support key)", commands: []*command{
		{name: "search", summary: "find deliveries by identity, destination, status and time", nargs: [2]int{0, 0}, run: deliveriesSearch,
			help: "Every filter is optional and they combine. The newest changes come first; one page (--limit) is shown\n" +
				"unless --all follows every page. --since and --until take a time (2026-11-01T00:00:00Z) or an age (90m, 2h, 7d).",
			flags: func(fs *flag.FlagSet, o *opts) {
				searchFlags(fs, o)
				fs.StringVar(&o.status, "status", "", "pending, retrying, delivered, dead_lettered or excluded")
			}},
	}}
}

// searchFlags are the filters deliveries search and dead-letters list share.
func searchFlags(fs *flag.FlagSet, o *opts) {
	fs.StringVar(&o.email, "email", "", "the profile's email `ADDRESS`")
	fs.StringVar(&o.externalID, "external-id", "", "the profile's external `ID`")
	fs.StringVar(&o.destination, "destination", "", "a destination `ID` or name (a name needs an operator key)")
	fs.StringVar(&o.reason, "reason", "", "a reason such as client_error or missing_identity")
	fs.StringVar(&o.since, "since", "", "changed at or after `TIME` (RFC 3339, or an age such as 2h or 7d)")
	fs.StringVar(&o.until, "until", "", "changed before `TIME` (RFC 3339, or an age)")
	fs.IntVar(&o.limit, "limit", 0, "rows per page (default: the server's, 50)")
	fs.StringVar(&o.cursor, "cursor", "", "start at this page (the cursor a previous page printed)")
	fs.BoolVar(&o.all, "all", false, "follow every page")
}

// when reads --since/--until: an RFC 3339 time or an age before now (90m, 2h, 7d).
func when(flagName, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	age := v
	days := 0
	if n, ok := strings.CutSuffix(v, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d < 0 {
			return time.Time{}, usagef("--%s %q: want an RFC 3339 time or an age such as 2h or 7d", flagName, v)
		}
		days, age = d, "0s"
	}
	d, err := time.ParseDuration(age)
	if err != nil || d < 0 {
		return time.Time{}, usagef("--%s %q: want an RFC 3339 time or an age such as 2h or 7d", flagName, v)
	}
	return now.Add(-d - time.Duration(days)*24*time.Hour), nil
}

// filters is what the shared search flags select.
type filters struct {
	destinationID, identity string
	since, until            time.Time
}

func (s *session) filters(ctx context.Context) (filters, error) {
	var f filters
	var err error
	if s.o.email != "" && s.o.externalID != "" {
		return f, usagef("--email and --external-id: give one of them")
	}
	f.identity = firstSet(s.o.email, s.o.externalID)
	if f.since, err = when("since", s.o.since, s.now()); err != nil {
		return f, err
	}
	if f.until, err = when("until", s.o.until, s.now()); err != nil {
		return f, err
	}
	if s.o.limit < 0 {
		return f, usagef("--limit %d: want a positive number", s.o.limit)
	}
	if s.o.destination != "" {
		if f.destinationID, err = s.resolve(ctx, s.o.destination); err != nil {
			return f, err
		}
	}
	return f, nil
}

func updatesGet(ctx context.Context, s *session, args []string) error {
	u, err := s.c.GetUpdate(ctx, args[0])
	if err != nil {
		return err
	}
	if s.json() {
		return printJSON(s.stdout, u)
	}
	fields(s.stdout, "update", u.UpdateID, "profile", u.ProfileKey, "received", ts(u.ReceivedAt), "routed", ts(u.RoutedAt),
		"audiences", strings.Join(u.Audiences, ", "), "deliveries", strconv.Itoa(len(u.Deliveries)))
	if len(u.Deliveries) == 0 {
		return nil
	}
	fmt.Fprintln(s.stdout)
	s.deliveryTable(ctx, u.Deliveries, false)
	for _, d := range u.Deliveries {
		if len(d.Attempts) == 0 {
			continue
		}
		fmt.Fprintf(s.stdout, "\nattempts of %s (%s):\n", d.DeliveryID, s.destName(ctx, d.DestinationID))
		t := newTable(s.stdout, "N", "AT", "STATUS", "LATENCY", "OUTCOME", "REASON", "ANSWER")
		for _, a := range d.Attempts {
			t.row(strconv.Itoa(a.N), ts(a.At), code(a.StatusCode), fmt.Sprintf("%.0f ms", a.LatencyMs), a.Outcome, a.Reason, excerpt(a.Error))
		}
		t.flush()
	}
	return nil
}

// excerpt shortens a destination's answer for a table cell.
func excerpt(s string) string {
	s = clean(s)
	if r := []rune(s); len(r) > 60 {
		return string(r[:59]) + "…"
	}
	return s
}

func (s *session) deliveryTable(ctx context.Context, ds []client.Delivery, withUpdate bool) {
	h := []string{"DELIVERY", "DESTINATION", "STATUS", "REASON", "ATTEMPTS", "LAST ATTEMPT", "NEXT ATTEMPT", "UPDATED"}
	if withUpdate {
		h = append([]string{h[0], "UPDATE"}, h[1:]...)
	}
	t := newTable(s.stdout, h...)
	for _, d := range ds {
		row := []string{d.DeliveryID, s.destName(ctx, d.DestinationID), d.Status, d.Reason, strconv.Itoa(len(d.Attempts)), lastAttempt(d), tsp(d.NextAttemptAt), ts(d.UpdatedAt)}
		if withUpdate {
			row = append([]string{row[0], d.UpdateID}, row[1:]...)
		}
		t.row(row...)
	}
	t.flush()
}

// page is one page of deliveries, or all of them with --all.
type page struct {
	Deliveries []client.Delivery `json:"deliveries"`
	NextCursor string            `json:"nextCursor,omitempty"`
}

// collect fetches one page from cursor, or every page with --all.
func (s *session) collect(fetch func(cursor string) (*client.DeliveryPage, error)) (page, error) {
	out := page{Deliveries: []client.Delivery{}}
	cursor := s.o.cursor
	for {
		p, err := fetch(cursor)
		if err != nil {
			return out, err
		}
		out.Deliveries = append(out.Deliveries, p.Deliveries...)
		out.NextCursor = p.NextCursor
		if !s.o.all || p.NextCursor == "" {
			return out, nil
		}
		cursor = p.NextCursor
	}
}

func (s *session) showPage(ctx context.Context, p page, what string) error {
	if s.json() {
		return printJSON(s.stdout, p)
	}
	if len(p.Deliveries) == 0 {
		fmt.Fprintf(s.stderr, "no %s match\n", what)
		return nil
	}
	s.deliveryTable(ctx, p.Deliveries, true)
	if p.NextCursor != "" {
		fmt.Fprintf(s.stderr, "more %s: add --cursor %s for the next page, or --all for every page\n", what, p.NextCursor)
	}
	return nil
}

func deliveriesSearch(ctx context.Context, s *session, _ []string) error {
	switch s.o.status {
	case "", client.StatusPending, client.StatusRetrying, client.StatusDelivered, client.StatusDeadLettered, client.StatusExcluded:
	default:
		return usagef("--status %q: want pending, retrying, delivered, dead_lettered or excluded", s.o.status)
	}
	f, err := s.filters(ctx)
	if err != nil {
		return err
	}
	p, err := s.collect(func(cursor string) (*client.DeliveryPage, error) {
		return s.c.SearchDeliveries(ctx, client.DeliveryQuery{DestinationID: f.destinationID, Identity: f.identity, Status: s.o.status,
			Reason: s.o.reason, Since: f.since, Until: f.until, Limit: s.o.limit, Cursor: cursor})
	})
	if err != nil {
		return err
	}
	return s.showPage(ctx, p, "deliveries")
}
