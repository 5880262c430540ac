//go:build unix

package main

import (
	"fmt"
	"slices"
	"strings"
)

// result is one line of a delivery scenario's output: a label, named numbers (kept in order),
// free text (CPU split, notes) and a verdict on one of the numbers.
type result struct {
	label  string
	names  []string
	vals   map[string]float64
	prec   map[string]int
	text   string // e.g. "cpu_cores=qgate:0.9,broker:0.3,qbench:0.4"
	judge  string // name of the number the target applies to ("" none)
	target float64
	atMost bool // target is an upper bound (<=), else a lower bound (>=)
}

func newResult(label string) *result {
	return &result{label: label, vals: map[string]float64{}, prec: map[string]int{}}
}

// set records a number with prec decimals.
func (r *result) set(name string, v float64, prec int) *result {
	if _, ok := r.vals[name]; !ok {
		r.names = append(r.names, name)
	}
	r.vals[name] = v
	r.prec[name] = prec
	return r
}

// drop removes a number.
func (r *result) drop(name string) {
	r.names = slices.DeleteFunc(r.names, func(n string) bool { return n == name })
	delete(r.vals, name)
	delete(r.prec, name)
}

func (r *result) pass() bool {
	if r.judge == "" {
		return true
	}
	v := r.vals[r.judge]
	if r.atMost {
		return v <= r.target
	}
	return v >= r.target
}

func (r *result) String() string {
	var b strings.Builder
	b.WriteString(r.label)
	for _, n := range r.names {
		fmt.Fprintf(&b, " %s=%.*f", n, r.prec[n], r.vals[n])
	}
	if r.judge != "" {
		op := ">="
		if r.atMost {
			op = "<="
		}
		verdict := "MISS"
		if r.pass() {
			verdict = "PASS"
		}
		fmt.Fprintf(&b, " target:%s%s%g %s", r.judge, op, r.target, verdict)
	}
	if r.text != "" {
		b.WriteString(" " + r.text)
	}
	return b.String()
}

// medianResult takes each number's median over the runs on its own (errors-like counts are
// medians too: print per-run lines to see them); the text is the run whose judged number is the
// median's.
func medianResult(runs []*result) *result {
	m := newResult(runs[0].label)
	m.judge, m.target, m.atMost = runs[0].judge, runs[0].target, runs[0].atMost
	for _, n := range runs[0].names {
		v := make([]float64, 0, len(runs))
		for _, r := range runs {
			v = append(v, r.vals[n])
		}
		m.set(n, median64(v), runs[0].prec[n])
	}
	sorted := slices.Clone(runs)
	key := m.judge
	if key == "" {
		key = runs[0].names[0]
	}
	slices.SortFunc(sorted, func(a, b *result) int { return cmpFloat(a.vals[key], b.vals[key]) })
	m.text = sorted[len(sorted)/2].text
	return m
}

func median64(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}
