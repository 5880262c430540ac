package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/qgate/qgate/internal/version"
	"github.com/qgate/qgate/pkg/client"
)

// Exit codes of the API commands (docs/cli.md): scripts may rely on them.
const (
	exitOK       = 0 // the call succeeded
	exitFailed   = 1 // the call failed: qgate refused it (409, 422, 5xx), could not be reached, or a test delivery failed
	exitUsage    = 2 // the command line is wrong: unknown command or flag, missing argument, unreadable file, not confirmed
	exitNotFound = 3 // no such destination, update, delivery (404)
	exitAuth     = 4 // the key is missing, unknown or revoked (401), or its role may not do this (403)
)

// group is a top-level API command such as `qgate destinations`; a group with a single
// command named "" is itself the command (`qgate stats DESTINATION`).
type group struct {
	name, summary string
	commands      []*command
}

// command is one leaf such as `qgate destinations create`.
type command struct {
	name    string
	args    string // the positional arguments, for the usage line
	summary string
	help    string // more lines of help, or ""
	flags   func(fs *flag.FlagSet, o *opts)
	nargs   [2]int // at least, at most positional arguments
	run     func(ctx context.Context, s *session, args []string) error
}

// opts holds every flag a command may register; each command registers the ones it uses.
type opts struct {
	url, apiKey, output string
	file                string
	ifMatch             int64
	yes                 bool
	force               bool
	all                 bool
	email, externalID   string
	destination, status string
	reason              string
	since, until        string
	limit               int
	cursor              string
	window              string
	event               string
	ids                 stringList
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// session is what a running command uses: the client, the chosen output and the streams.
type session struct {
	c      *client.Client
	o      *opts
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	now    func() time.Time
	dir    map[string]string // destination ID → name, once read (see directory)
}

func (s *session) json() bool { return s.o.output == "json" }

// usageError is a wrong command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// apiGroups are the commands that call a qgate node's API with QGATE_URL and QGATE_API_KEY.
func apiGroups() []*group {
	return []*group{destinationsGroup(), updatesGroup(), deliveriesGroup(), deadLettersGroup(), statsGroup(), alertsGroup()}
}

func findGroup(name string) *group {
	for _, g := range apiGroups() {
		if g.name == name {
			return g
		}
	}
	return nil
}

// apiUsage is the part of `qgate --help` that lists the API commands.
func apiUsage() string {
	var b strings.Builder
	b.WriteString("\nAPI commands (they call a running qgate; QGATE_URL and QGATE_API_KEY, or --url and --api-key):\n")
	for _, g := range apiGroups() {
		fmt.Fprintf(&b, "  %s %s\n      %s\n", g.name, groupVerbs(g), g.summary)
	}
	b.WriteString("\nEvery command takes --help; -o json prints JSON for scripts. Exit codes: 0 ok, 1 the call failed,\n2 usage error, 3 not found, 4 not authenticated or not allowed. See docs/cli.md.\n")
	return b.String()
}

func groupVerbs(g *group) string {
	if len(g.commands) == 1 && g.commands[0].name == "" {
		return g.commands[0].args
	}
	names := make([]string, len(g.commands))
	for i, c := range g.commands {
		names[i] = c.name
	}
	return strings.Join(names, "|")
}

func (g *group) usage() string {
	if len(g.commands) == 1 && g.commands[0].name == "" {
		return g.commands[0].usage(g)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "usage: qgate %s <command> [flags]\n\n%s\n\ncommands:\n", g.name, g.summary)
	for _, c := range g.commands {
		fmt.Fprintf(&b, "  %-30s  %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(&b, "\nRun `qgate %s <command> --help` for a command's flags.\n", g.name)
	return b.String()
}

func (c *command) usage(g *group) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: qgate %s [flags]\n\n%s\n", strings.Join(strings.Fields(g.name+" "+c.name+" "+c.args), " "), c.summary)
	if c.help != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimRight(c.help, "\n"))
	}
	fs, _ := c.flagSet(g)
	b.WriteString("\nflags:\n")
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		name, use := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		l := "  " + dash + f.Name
		if name != "" {
			l += " " + name
		}
		l = fmt.Sprintf("%-26s  %s", l, use)
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			l += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		lines = append(lines, l)
	})
	sort.Strings(lines)
	b.WriteString(strings.Join(lines, "\n") + "\n")
	return b.String()
}

// flagSet returns the command's flags: its own and the connection and output flags every
// API command takes.
func (c *command) flagSet(g *group) (*flag.FlagSet, *opts) {
	o := &opts{}
	fs := flag.NewFlagSet("qgate "+g.name+" "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.url, "url", "", "qgate's base URL (default $QGATE_URL)")
	fs.StringVar(&o.apiKey, "api-key", "", "the API key (default $QGATE_API_KEY; prefer the variable: flags show in ps)")
	fs.StringVar(&o.output, "o", "table", "output `FORMAT`: table for people or json for scripts")
	if c.flags != nil {
		c.flags(fs, o)
	}
	return fs, o
}

// runAPI runs `qgate GROUP [COMMAND] ARGS…` and returns the exit code.
func runAPI(g *group, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c *command
	if len(g.commands) == 1 && g.commands[0].name == "" {
		c = g.commands[0]
	} else {
		if len(args) == 0 {
			fmt.Fprint(stderr, g.usage())
			return exitUsage
		}
		switch args[0] {
		case "-h", "--help", "help":
			fmt.Fprint(stdout, g.usage())
			return exitOK
		}
		for _, cc := range g.commands {
			if cc.name == args[0] {
				c = cc
			}
		}
		if c == nil {
			fmt.Fprintf(stderr, "qgate: unknown %s command %q\n\n%s", g.name, args[0], g.usage())
			return exitUsage
		}
		args = args[1:]
	}
	fs, o := c.flagSet(g)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, c.usage(g))
		return exitOK
	}
	if err == nil && (len(pos) < c.nargs[0] || len(pos) > c.nargs[1]) {
		err = usagef("want %s", describeArgs(c))
	}
	if err == nil && o.output != "table" && o.output != "json" {
		err = usagef("-o %q: want table or json", o.output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "qgate: %v\n\n%s", err, c.usage(g))
		return exitUsage
	}
	s := &session{o: o, stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now}
	if s.c, err = connect(o, getenv); err != nil {
		return report(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return report(stderr, c.run(ctx, s, pos))
}

func describeArgs(c *command) string {
	if c.nargs[1] == 0 {
		return "no arguments"
	}
	return c.args
}

// parseInterspersed parses flags wherever they are among the positional arguments
// (`get ID -o json` as well as `get -o json ID`); after "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// connect makes the client from the flags, falling back to QGATE_URL and QGATE_API_KEY.
func connect(o *opts, getenv func(string) string) (*client.Client, error) {
	base := firstSet(o.url, getenv("QGATE_URL"))
	key := firstSet(o.apiKey, getenv("QGATE_API_KEY"))
	if base == "" {
		return nil, usagef("no qgate to call: set QGATE_URL (such as http://localhost:8080) or pass --url")
	}
	if key == "" {
		return nil, usagef("no API key: set QGATE_API_KEY or pass --api-key")
	}
	c, err := client.New(base, key, client.WithUserAgent("qgate-cli/"+version.Version),
		client.WithHTTPClient(&http.Client{Timeout: 60 * time.Second}))
	if err != nil {
		return nil, usagef("QGATE_URL / --url: %v", err)
	}
	return c, nil
}

func firstSet(v ...string) string {
	for _, s := range v {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// report prints err for a person and returns its exit code.
func report(stderr io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "qgate: %s\n", ue.msg)
		return exitUsage
	}
	var nf notFound
	if errors.As(err, &nf) {
		fmt.Fprintf(stderr, "qgate: %s\n", nf.msg)
		return exitNotFound
	}
	var ae *client.APIError
	if !errors.As(err, &ae) {
		fmt.Fprintf(stderr, "qgate: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stderr, "qgate: %s %s: %d %s\n", ae.Method, ae.Path, ae.Status, http.StatusText(ae.Status))
	for _, p := range ae.Problems {
		line := "  "
		if p.Path != "" {
			line += p.Path + ": "
		}
		line += p.Code
		if p.Message != "" {
			line += ": " + p.Message
		}
		fmt.Fprintln(stderr, line)
	}
	if ae.RetryAfter > 0 {
		fmt.Fprintf(stderr, "  retry after %s\n", ae.RetryAfter)
	}
	switch ae.Status {
	case http.StatusNotFound:
		return exitNotFound
	case http.StatusUnauthorized:
		fmt.Fprintln(stderr, "  check QGATE_API_KEY: the key is missing, unknown or revoked")
		return exitAuth
	case http.StatusForbidden:
		fmt.Fprintln(stderr, "  the key's role may not do this (destinations: operator; deliveries, updates, dead letters: support; stats: either)")
		return exitAuth
	}
	return exitFailed
}

// readInput reads -f FILE ("-" is standard input).
func (s *session) readInput(name string) ([]byte, error) {
	if name == "" {
		return nil, usagef("-f FILE is required")
	}
	if name == "-" {
		b, err := io.ReadAll(io.LimitReader(s.stdin, 1<<20))
		if err != nil {
			return nil, usagef("reading standard input: %v", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return b, nil
}

// confirm asks on standard input unless --yes was given: the answer must be "yes".
func (s *session) confirm(question string) error {
	if s.o.yes {
		return nil
	}
	fmt.Fprintf(s.stderr, "%s Type yes to go on: ", question)
	var answer string
	_, _ = fmt.Fscanln(s.stdin, &answer)
	if strings.TrimSpace(strings.ToLower(answer)) != "yes" {
		fmt.Fprintln(s.stderr)
		return usagef("not confirmed; nothing was changed (pass --yes to skip the question)")
	}
	return nil
}
