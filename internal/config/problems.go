// Package config loads and validates the two files an operator writes: the
// tenant inventory (which tenants to configure, in which cloud, from which
// on-premises site) and the worker/operator configuration (how to reach
// Temporal, which task queues to serve, how to reach PowerShell, which
// credentials to use).
//
// Both files are decoded strictly through yaml.Node rather than into structs
// with reflection, so that every problem carries FILE:LINE and a field path,
// unknown fields are rejected, and all problems are reported in one run: an
// operator fixing an inventory of a thousand tenants should not have to
// iterate one error at a time.
//
// Secrets never live in these files. Credentials are references (env:NAME or
// file:PATH) resolved by workers at run time with ResolveSecret, so that
// inventories and workflow inputs can be shared, logged and stored in
// Temporal history without leaking anything.
package config

import (
	"fmt"
	"sort"
	"strings"
)

// Problem is one thing wrong with a configuration file. Line is 1-based; it is
// 0 when the problem has no position (for example a value taken from an
// environment variable, where File is "environment" and Field the variable).
type Problem struct {
	File    string
	Line    int
	Field   string
	Message string
}

// Error formats the problem as FILE:LINE: FIELD: MESSAGE, the shape editors
// and CI log viewers turn into links.
func (p Problem) Error() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in one validation run. It is returned as
// the error of the Parse and Load functions so that callers can print them
// all (errors.As(err, &problems)) and exit non-zero.
type Problems []Problem

// Error joins the problems one per line.
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// sorted orders problems by line so that checks run after the main pass
// (duplicates, cross-field rules) still read top to bottom; positionless
// problems (environment) go last.
func (ps Problems) sorted() Problems {
	out := append(Problems(nil), ps...)
	key := func(p Problem) int {
		if p.Line == 0 {
			return int(^uint(0) >> 1)
		}
		return p.Line
	}
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out
}
