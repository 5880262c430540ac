package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/qgate/qgate/pkg/client"
)

func destinationsGroup() *group {
	file := func(what string) func(fs *flag.FlagSet, o *opts) {
		return func(fs *flag.FlagSet, o *opts) {
			fs.StringVar(&o.file, "f", "", "`FILE` holding "+what+" (- reads standard input)")
		}
	}
	return &group{name: "destinations", summary: "Qualtrics destinations: register, change, test, pause, resume and delete them (operator key)", commands: []*command{
		{name: "list", summary: "list the live destinations", nargs: [2]int{0, 0}, run: destinationsList},
		{name: "get", args: "DESTINATION", summary: "show one destination (by ID or name)", nargs: [2]int{1, 1}, run: destinationsGet},
		{name: "create", args: "-f FILE", summary: "register a destination from a JSON file", nargs: [2]int{0, 0}, run: destinationsCreate,
			help: "The file is the body of POST /v1/destinations (docs/destinations.md), for example:\n\n" +
				`  {"name": "nps follow-up", "url": "https://iad1.qualtrics.com/inbound-event/v1/events/json/triggers?workflowId=WF_…",` + "\n" +
				`   "username": "…", "apiToken": "…", "identityMappings": [{"source": "Email", "target": "email"}], "audiences": ["…"]}` + "\n\n" +
				"qgate reports every invalid field at once; nothing is created then.",
			flags: file("the destination as JSON")},
		{name: "update", args: "DESTINATION -f FILE", summary: "change the fields a JSON file sets", nargs: [2]int{1, 1}, run: destinationsUpdate,
			help: "The file is the body of PATCH /v1/destinations/{id}: only the fields it sets change.\nWith --if-match the change applies only if the destination is still at that version (409 otherwise).",
			flags: func(fs *flag.FlagSet, o *opts) {
				file("the fields to change as JSON")(fs, o)
				fs.Int64Var(&o.ifMatch, "if-match", 0, "apply only at this `VERSION` (0: any)")
			}},
		{name: "test", args: "DESTINATION", summary: "send one test event now and show the answer (exit 1 if it was not delivered)", nargs: [2]int{1, 1}, run: destinationsTest,
			help:  "The test goes through the real transform and client; no delivery is recorded.",
			flags: file("a profile to send instead of qgate's sample (JSON)")},
		{name: "pause", args: "DESTINATION", summary: "hold delivery: updates are still routed and wait", nargs: [2]int{1, 1}, run: destinationsPause},
		{name: "resume", args: "DESTINATION", summary: "let the waiting deliveries go out", nargs: [2]int{1, 1}, run: destinationsResume},
		{name: "delete", args: "DESTINATION", summary: "delete a destination (its waiting deliveries close as excluded)", nargs: [2]int{1, 1}, run: destinationsDelete,
			help:  "Asks for confirmation on standard input unless --yes is given.",
			flags: func(fs *flag.FlagSet, o *opts) { fs.BoolVar(&o.yes, "yes", false, "do not ask for confirmation") }},
	}}
}

// notFound is an answer the CLI itself found empty (a destination name no destination has):
// exit code 3, like a 404.
type notFound struct{ msg string }

func (e notFound) Error() string { return e.msg }

// directory maps live destinations' IDs to their names, read once per command: through
// GET /v1/support/destinations (support key), else GET /v1/destinations (operator key).
func (s *session) directory(ctx context.Context) (map[string]string, error) {
	if s.dir != nil {
		return s.dir, nil
	}
	dir := map[string]string{}
	var err error
	for d, e := range s.c.SupportDestinations(ctx) {
		if err = e; err != nil {
			break
		}
		dir[d.ID] = d.Name
	}
	if err != nil && (client.IsForbidden(err) || client.IsNotFound(err)) {
		err = nil
		for d, e := range s.c.AllDestinations(ctx, 0) {
			if err = e; err != nil {
				break
			}
			dir[d.ID] = d.Name
		}
	}
	if err != nil {
		return nil, err
	}
	s.dir = dir
	return dir, nil
}

// destName is a destination's name for a table, or its ID when the name cannot be read (a
// deleted destination, or a key that may list none).
func (s *session) destName(ctx context.Context, id string) string {
	dir, err := s.directory(ctx)
	if err != nil {
		s.dir = map[string]string{} // do not ask again
		return id
	}
	if name, ok := dir[id]; ok {
		return name
	}
	return id
}

// resolve turns a destination argument into its ID: IDs (dst_…) are used as they are, any
// other argument is looked up by name among the live destinations.
func (s *session) resolve(ctx context.Context, arg string) (string, error) {
	if strings.HasPrefix(arg, "dst_") {
		return arg, nil
	}
	dir, err := s.directory(ctx)
	if err != nil {
		if client.IsForbidden(err) {
			fmt.Fprintf(s.stderr, "qgate: this key may not list destinations to look up %q by name; give its ID (dst_…) instead\n", arg)
		}
		return "", fmt.Errorf("looking up destination %q by name: %w", arg, err)
	}
	for id, name := range dir {
		if name == arg {
			return id, nil
		}
	}
	return "", notFound{fmt.Sprintf("no live destination is named %q (run qgate destinations list)", arg)}
}

func destinationsList(ctx context.Context, s *session, _ []string) error {
	all := []client.Destination{}
	for d, err := range s.c.AllDestinations(ctx, 0) {
		if err != nil {
			return err
		}
		all = append(all, d)
	}
	if s.json() {
		return printJSON(s.stdout, all)
	}
	t := newTable(s.stdout, "ID", "NAME", "STATE", "AUDIENCES", "RATE/MIN", "TOKEN", "VERSION")
	for _, d := range all {
		t.row(d.ID, d.Name, destState(d), strings.Join(d.Audiences, ","), rate(d.RateLimitPerMinute), "…"+d.APITokenLast4, strconv.FormatInt(d.Version, 10))
	}
	t.flush()
	return nil
}

func destState(d client.Destination) string {
	switch {
	case !d.Enabled:
		return "disabled"
	case d.Paused:
		return "paused"
	}
	return "active"
}

func rate(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}

func (s *session) showDestination(d *client.Destination) error {
	if s.json() {
		return printJSON(s.stdout, d)
	}
	ids := make([]string, len(d.IdentityMappings))
	for i, m := range d.IdentityMappings {
		ids[i] = m.Source + " → " + m.Target
	}
	attrs := make([]string, len(d.AttributeMappings))
	for i, m := range d.AttributeMappings {
		attrs[i] = m.Source + " → " + m.Target
	}
	fields(s.stdout,
		"id", d.ID, "name", d.Name, "description", d.Description, "state", destState(*d),
		"url", d.URL, "username", d.Username, "api token", "…"+d.APITokenLast4,
		"identities", strings.Join(ids, ", "), "attributes", strings.Join(attrs, ", "),
		"audiences", strings.Join(d.Audiences, ", "), "rate/min", rate(d.RateLimitPerMinute),
		"version", strconv.FormatInt(d.Version, 10), "created", ts(d.CreatedAt), "updated", ts(d.UpdatedAt))
	return nil
}

func destinationsGet(ctx context.Context, s *session, args []string) error {
	id, err := s.resolve(ctx, args[0])
	if err != nil {
		return err
	}
	d, err := s.c.GetDestination(ctx, id)
	if err != nil {
		return err
	}
	return s.showDestination(d)
}

// decodeFile decodes -f FILE strictly: an unknown field is a usage error naming it, so a typo
// does not silently drop a setting.
func (s *session) decodeFile(dst any) error {
	b, err := s.readInput(s.o.file)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return usagef("%s: not the expected JSON: %v", fileName(s.o.file), err)
	}
	return nil
}

func fileName(f string) string {
	if f == "-" {
		return "standard input"
	}
	return f
}

func destinationsCreate(ctx context.Context, s *session, _ []string) error {
	var nd client.NewDestination
	if err := s.decodeFile(&nd); err != nil {
		return err
	}
	d, err := s.c.CreateDestination(ctx, nd)
	if err != nil {
		return err
	}
	if !s.json() {
		fmt.Fprintf(s.stderr, "created destination %s (%s)\n", d.ID, d.Name)
	}
	return s.showDestination(d)
}

func destinationsUpdate(ctx context.Context, s *session, args []string) error {
	var p client.DestinationPatch
	if err := s.decodeFile(&p); err != nil {
		return err
	}
	id, err := s.resolve(ctx, args[0])
	if err != nil {
		return err
	}
	d, err := s.c.UpdateDestination(ctx, id, p, s.o.ifMatch)
	if err != nil {
		return err
	}
	if !s.json() {
		fmt.Fprintf(s.stderr, "updated destination %s (%s), now at version %d\n", d.ID, d.Name, d.Version)
	}
	return s.showDestination(d)
}

// testFailed makes `destinations test` exit 1 when the test event was not delivered.
type testFailed struct{ outcome string }

func (e testFailed) Error() string { return "the test event was not delivered: " + e.outcome }

func destinationsTest(ctx context.Context, s *session, args []string) error {
	var profile json.RawMessage
	if s.o.file != "" {
		b, err := s.readInput(s.o.file)
		if err != nil {
			return err
		}
		if !json.Valid(b) {
			return usagef("%s: not valid JSON", fileName(s.o.file))
		}
		profile = b
	}
	id, err := s.resolve(ctx, args[0])
	if err != nil {
		return err
	}
	r, err := s.c.TestDestination(ctx, id, profile)
	if err != nil {
		return err
	}
	if s.json() {
		err = printJSON(s.stdout, r)
	} else {
		fields(s.stdout, "delivered", strconv.FormatBool(r.Delivered), "status", code(r.StatusCode),
			"latency", fmt.Sprintf("%.0f ms", r.LatencyMs), "outcome", r.Outcome, "reason", r.Reason, "answer", r.BodyExcerpt)
	}
	if err == nil && !r.Delivered {
		return testFailed{strings.TrimSpace(code(r.StatusCode) + " " + r.Outcome + " " + r.Reason)}
	}
	return err
}

func code(c int) string {
	if c == 0 {
		return "no answer"
	}
	return strconv.Itoa(c)
}

func destinationsPause(ctx context.Context, s *session, args []string) error {
	return s.destinationAction(ctx, args[0], "paused", s.c.PauseDestination)
}

func destinationsResume(ctx context.Context, s *session, args []string) error {
	return s.destinationAction(ctx, args[0], "resumed", s.c.ResumeDestination)
}

func (s *session) destinationAction(ctx context.Context, arg, done string, act func(context.Context, string) (*client.Destination, error)) error {
	id, err := s.resolve(ctx, arg)
	if err != nil {
		return err
	}
	d, err := act(ctx, id)
	if err != nil {
		return err
	}
	if s.json() {
		return printJSON(s.stdout, d)
	}
	fmt.Fprintf(s.stdout, "%s destination %s (%s)\n", done, d.ID, d.Name)
	return nil
}

func destinationsDelete(ctx context.Context, s *session, args []string) error {
	id, err := s.resolve(ctx, args[0])
	if err != nil {
		return err
	}
	d, err := s.c.GetDestination(ctx, id)
	if err != nil {
		return err
	}
	if err := s.confirm(fmt.Sprintf("Delete destination %s (%s)? Its waiting deliveries close as excluded.", d.ID, d.Name)); err != nil {
		return err
	}
	if err := s.c.DeleteDestination(ctx, id); err != nil {
		return err
	}
	if s.json() {
		return printJSON(s.stdout, map[string]any{"deleted": d.ID, "name": d.Name})
	}
	fmt.Fprintf(s.stdout, "deleted destination %s (%s)\n", d.ID, d.Name)
	return nil
}
