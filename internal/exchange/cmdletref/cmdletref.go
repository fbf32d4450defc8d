// Package cmdletref is Microsoft's reference of the cmdlets hybridflow
// sends: every parameter of each, per parameter set, whether it is
// mandatory there, and which products have it (on-premises Exchange or
// Lync/Skype for Business Server, Exchange Online). The table is
// exchange-cmdlets.tsv, embedded, transcribed from Microsoft's cmdlet
// documentation (github.com/MicrosoftDocs/office-docs-powershell; each row
// names its page and commit).
//
// Bind resolves a command the way PowerShell's parameter binder does with
// named parameters, so that the simulated hosts refuse what a real host
// refuses, with the same ParameterBindingException and message, and so
// that a test can check every call the product can make.
package cmdletref

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hybridflow/hybridflow/internal/exchange"
)

//go:embed exchange-cmdlets.tsv
var tableTSV []byte

// File is the embedded table's path in the repository, for messages.
const File = "internal/exchange/cmdletref/exchange-cmdlets.tsv"

// Side is where a command runs; it decides which parameters exist.
type Side string

const (
	// OnPrem is on-premises Exchange Server (the PowerShell host).
	OnPrem Side = "onprem"
	// Online is Exchange Online (InvokeCommand).
	Online Side = "online"
	// Lync is Lync Server / Skype for Business Server (the PowerShell host
	// with the Lync module).
	Lync Side = "lync"
)

// Exception types and texts PowerShell raises when binding fails. The
// texts are PowerShell's own (ParameterBinderStrings), as a real host
// prints them.
const (
	// TypeNotInReference: the cmdlet has no rows in the table. Not a
	// PowerShell error: the table must be extended from Microsoft's
	// documentation before the product may send the cmdlet.
	TypeNotInReference = "HybridFlow.CmdletNotInReferenceException"
	// TypeCommandNotFound: the cmdlet does not exist on this side (a Lync
	// cmdlet sent to Exchange, or the reverse).
	TypeCommandNotFound = "System.Management.Automation.CommandNotFoundException"

	msgParameterNotFound = "A parameter cannot be found that matches parameter name '%s'."
	msgAmbiguousSet      = "Parameter set cannot be resolved using the specified named parameters. One or more parameters issued cannot be used together or an insufficient number of parameters were provided."
	msgMissingMandatory  = "Cannot process command because of one or more missing mandatory parameters: %s."
	msgBoundTwice        = "Cannot bind parameter because parameter '%s' is specified more than once. To provide multiple values to parameters that can accept multiple values, use the array syntax. For example, \"-parameter value1,value2,value3\"."
)

// commonParameters are PowerShell's common parameters with their aliases
// (about_CommonParameters): every cmdlet accepts them, and the
// documentation leaves them out of each cmdlet's table. -Confirm and
// -WhatIf are not among them: only cmdlets that support ShouldProcess have
// those, and the table lists them where they exist.
var commonParameters = map[string]string{
	"debug": "Debug", "db": "Debug",
	"erroraction": "ErrorAction", "ea": "ErrorAction",
	"errorvariable": "ErrorVariable", "ev": "ErrorVariable",
	"informationaction": "InformationAction", "infa": "InformationAction",
	"informationvariable": "InformationVariable", "iv": "InformationVariable",
	"outvariable": "OutVariable", "ov": "OutVariable",
	"outbuffer": "OutBuffer", "ob": "OutBuffer",
	"pipelinevariable": "PipelineVariable", "pv": "PipelineVariable",
	"verbose": "Verbose", "vb": "Verbose",
	"warningaction": "WarningAction", "wa": "WarningAction",
	"warningvariable": "WarningVariable", "wv": "WarningVariable",
}

// IsCommonParameter reports whether name (or an alias) is a PowerShell
// common parameter, accepted by every cmdlet.
func IsCommonParameter(name string) bool {
	_, ok := commonParameters[strings.ToLower(name)]
	return ok
}

// allSets is the parameter-set name the documentation gives a cmdlet with
// a single set.
const allSets = "(All)"

// Row is one line of the table: a parameter in one parameter set.
type Row struct {
	Line      int // line number in exchange-cmdlets.tsv
	Cmdlet    string
	Set       string // "(All)" when the cmdlet has one parameter set
	Parameter string
	Type      string
	Required  bool
	AppliesTo string // "on-prem", "online" or "both"
	Aliases   []string
	DocPath   string
	Commit    string
}

// String names the row as tests and messages cite it.
func (r Row) String() string {
	return fmt.Sprintf("%s:%d %s [%s] -%s", File, r.Line, r.Cmdlet, r.Set, r.Parameter)
}

// appliesTo reports whether the parameter exists on side.
func (r Row) appliesTo(side Side) bool {
	switch r.AppliesTo {
	case "both":
		return true
	case "on-prem":
		return side == OnPrem || side == Lync
	case "online":
		return side == Online
	}
	return false
}

// Cmdlet is one cmdlet's parameter sets, in table order.
type Cmdlet struct {
	Name    string
	DocPath string
	Sets    []string
	Rows    []Row

	once  sync.Once
	views map[Side]*sideView
}

// sideView is a cmdlet as one side's product has it.
type sideView struct {
	sets   []string                  // the parameter sets, in table order
	bySet  map[string]map[string]Row // set -> lower-case parameter -> row
	byName map[string]string         // lower-case name or alias -> parameter
}

// view returns the cmdlet as side has it, computed once.
func (c *Cmdlet) view(side Side) *sideView {
	c.once.Do(func() {
		c.views = map[Side]*sideView{}
		for _, sd := range []Side{OnPrem, Online, Lync} {
			v := &sideView{bySet: map[string]map[string]Row{}, byName: map[string]string{}}
			for _, r := range c.Rows {
				if !r.appliesTo(sd) {
					continue
				}
				if v.bySet[r.Set] == nil {
					v.bySet[r.Set] = map[string]Row{}
					v.sets = append(v.sets, r.Set)
				}
				v.bySet[r.Set][strings.ToLower(r.Parameter)] = r
				v.byName[strings.ToLower(r.Parameter)] = r.Parameter
				for _, a := range r.Aliases {
					v.byName[strings.ToLower(a)] = r.Parameter
				}
			}
			if len(v.sets) == 0 {
				// No parameter of the cmdlet exists on this side
				// (Get-OrganizationConfig online documents only the on-prem
				// -DomainController): the table cannot say whether the cmdlet
				// itself does, so it binds without parameters, in one set.
				v.sets = []string{allSets}
				v.bySet[allSets] = map[string]Row{}
			}
			c.views[sd] = v
		}
	})
	if v := c.views[side]; v != nil {
		return v
	}
	return &sideView{sets: []string{allSets}, bySet: map[string]map[string]Row{allSets: {}}, byName: map[string]string{}}
}

// Lync reports whether the cmdlet is a Lync Server / Skype for Business
// one (documented under skype/), rather than an Exchange one.
func (c *Cmdlet) Lync() bool { return strings.HasPrefix(c.DocPath, "skype/") }

// Table is the parsed reference.
type Table struct {
	cmdlets map[string]*Cmdlet // by lower-case name
	names   []string
}

// Parse reads a table in the embedded file's format: tab-separated, a
// header line naming the columns, '#' lines are comments.
func Parse(data []byte) (*Table, error) {
	t := &Table{cmdlets: map[string]*Cmdlet{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var col map[string]int
	need := []string{"cmdlet", "parameter_set", "parameter", "type", "required", "applies_to", "aliases", "doc_path", "source_commit"}
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, "\t")
		if col == nil {
			col = map[string]int{}
			for i, h := range f {
				col[strings.TrimSpace(h)] = i
			}
			for _, n := range need {
				if _, ok := col[n]; !ok {
					return nil, fmt.Errorf("cmdletref: line %d: header lacks column %q", line, n)
				}
			}
			continue
		}
		get := func(n string) string {
			if i := col[n]; i < len(f) {
				return strings.TrimSpace(f[i])
			}
			return ""
		}
		r := Row{Line: line, Cmdlet: get("cmdlet"), Set: get("parameter_set"), Parameter: get("parameter"), Type: get("type"),
			AppliesTo: get("applies_to"), DocPath: get("doc_path"), Commit: get("source_commit")}
		switch get("required") {
		case "true":
			r.Required = true
		case "false":
		default:
			return nil, fmt.Errorf("cmdletref: line %d: required is %q, not true or false", line, get("required"))
		}
		switch r.AppliesTo {
		case "on-prem", "online", "both":
		default:
			return nil, fmt.Errorf("cmdletref: line %d: applies_to is %q", line, r.AppliesTo)
		}
		if r.Cmdlet == "" || r.Set == "" || r.Parameter == "" {
			return nil, fmt.Errorf("cmdletref: line %d: cmdlet, parameter_set and parameter are required", line)
		}
		for _, a := range strings.Split(get("aliases"), "|") {
			for _, a := range strings.Split(a, ",") {
				if a = strings.TrimSpace(a); a != "" {
					r.Aliases = append(r.Aliases, a)
				}
			}
		}
		key := strings.ToLower(r.Cmdlet)
		c := t.cmdlets[key]
		if c == nil {
			c = &Cmdlet{Name: r.Cmdlet, DocPath: r.DocPath}
			t.cmdlets[key] = c
			t.names = append(t.names, r.Cmdlet)
		}
		if !slices.Contains(c.Sets, r.Set) {
			c.Sets = append(c.Sets, r.Set)
		}
		c.Rows = append(c.Rows, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if col == nil {
		return nil, fmt.Errorf("cmdletref: no header line")
	}
	sort.Strings(t.names)
	return t, nil
}

var (
	defaultOnce  sync.Once
	defaultTable *Table
)

// Default is the embedded table. It panics if the file does not parse,
// which a test of this package catches first.
func Default() *Table {
	defaultOnce.Do(func() {
		t, err := Parse(tableTSV)
		if err != nil {
			panic(err)
		}
		defaultTable = t
	})
	return defaultTable
}

// Cmdlets lists the cmdlets the table documents, sorted.
func (t *Table) Cmdlets() []string { return slices.Clone(t.names) }

// Cmdlet returns a cmdlet's entry (case-insensitive), or nil.
func (t *Table) Cmdlet(name string) *Cmdlet { return t.cmdlets[strings.ToLower(name)] }

// Binding is how a command bound.
type Binding struct {
	Cmdlet string // as the table spells it
	// Set is the parameter set the command resolved to. It is empty when
	// several sets remain and PowerShell would take the cmdlet's default
	// parameter set, which the Exchange documentation does not name;
	// Candidates then lists the sets it can be.
	Set        string
	Candidates []string
	// Params are the cmdlet's own parameters bound (common ones left out),
	// as the table spells them, sorted.
	Params []string
	// Rows are the table rows of the bound parameters in the chosen set
	// (in the first candidate when Set is empty).
	Rows []Row
}

// Bind resolves cmd on side as PowerShell binds named parameters:
//
//   - a name that is neither a parameter of the cmdlet on that side, nor
//     one of its aliases, nor a common parameter is refused
//     ("A parameter cannot be found that matches parameter name 'X'.");
//   - the parameter sets that contain every parameter given are the
//     candidates; none means the parameters mix sets ("Parameter set
//     cannot be resolved using the specified named parameters. ...");
//   - among several candidates, the one whose mandatory parameters are all
//     given wins; with more than one, PowerShell takes the default set
//     (Set is then empty, see Binding);
//   - mandatory parameters of the resolved set must be given ("Cannot
//     process command because of one or more missing mandatory
//     parameters: X.").
//
// Names are matched case-insensitively, in full or by a documented alias;
// PowerShell would also accept an unambiguous prefix, which Bind refuses
// so that the product always sends full names. Failures are
// *exchange.Error with the type a real host reports.
func (t *Table) Bind(side Side, cmd exchange.Command) (Binding, error) {
	c := t.Cmdlet(cmd.Cmdlet)
	if c == nil {
		return Binding{}, &exchange.Error{Cmdlet: cmd.Cmdlet, Type: TypeNotInReference, Category: "NotImplemented",
			Message: fmt.Sprintf("cmdlet %s is not in the reference table (%s); add its rows from Microsoft's documentation before sending it", cmd.Cmdlet, File)}
	}
	if c.Lync() != (side == Lync) {
		return Binding{}, &exchange.Error{Cmdlet: cmd.Cmdlet, Type: TypeCommandNotFound, Category: "ObjectNotFound",
			Message: fmt.Sprintf("The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program.", cmd.Cmdlet)}
	}
	v := c.view(side)
	sets, bySet, byName := v.sets, v.bySet, v.byName
	names := make([]string, 0, len(cmd.Parameters))
	for k := range cmd.Parameters {
		names = append(names, k)
	}
	sort.Strings(names) // one deterministic error when several are wrong
	bound := map[string]bool{}
	seen := map[string]bool{}
	var params []string
	for _, k := range names {
		canon, own := byName[strings.ToLower(k)]
		if !own {
			common, ok := commonParameters[strings.ToLower(k)]
			if !ok {
				return Binding{}, bindError(cmd.Cmdlet, msgParameterNotFound, k)
			}
			canon = common
		}
		if seen[strings.ToLower(canon)] {
			return Binding{}, bindError(cmd.Cmdlet, msgBoundTwice, canon)
		}
		seen[strings.ToLower(canon)] = true
		if own {
			bound[strings.ToLower(canon)] = true
			params = append(params, canon)
		}
	}
	sort.Strings(params)
	candidates := slices.Clone(sets)
	for p := range bound {
		candidates = slices.DeleteFunc(candidates, func(s string) bool { _, ok := bySet[s][p]; return !ok })
	}
	if len(candidates) == 0 {
		return Binding{}, bindError(cmd.Cmdlet, "%s", msgAmbiguousSet)
	}
	missing := func(set string) []string {
		var out []string
		for _, r := range c.Rows {
			if r.Set == set && r.Required && r.appliesTo(side) && !bound[strings.ToLower(r.Parameter)] {
				out = append(out, r.Parameter)
			}
		}
		return out
	}
	var satisfied []string
	for _, s := range candidates {
		if len(missing(s)) == 0 {
			satisfied = append(satisfied, s)
		}
	}
	b := Binding{Cmdlet: c.Name, Params: params}
	switch len(satisfied) {
	case 0:
		// PowerShell would go on with the default set (or give up as
		// ambiguous) and then stop for what that set lacks; name what the
		// candidates lack in common, or the closest candidate's.
		best := missing(candidates[0])
		common := slices.Clone(best)
		for _, s := range candidates[1:] {
			m := missing(s)
			common = slices.DeleteFunc(common, func(p string) bool { return !slices.Contains(m, p) })
			if len(m) < len(best) {
				best = m
			}
		}
		if len(common) > 0 {
			best = common
		}
		return Binding{}, bindError(cmd.Cmdlet, msgMissingMandatory, strings.Join(best, " "))
	case 1:
		b.Set = satisfied[0]
	}
	b.Candidates = satisfied
	rowsOf := satisfied[0]
	for _, p := range params {
		b.Rows = append(b.Rows, bySet[rowsOf][strings.ToLower(p)])
	}
	return b, nil
}

// Bind resolves cmd on side against the embedded table (see Table.Bind).
func Bind(side Side, cmd exchange.Command) (Binding, error) { return Default().Bind(side, cmd) }

// Check reports whether cmd binds on side (see Table.Bind); nil if it does.
func Check(side Side, cmd exchange.Command) error {
	_, err := Default().Bind(side, cmd)
	return err
}

func bindError(cmdlet, format string, args ...any) *exchange.Error {
	return &exchange.Error{Cmdlet: cmdlet, Type: exchange.TypeParameterBinding, Category: "InvalidArgument", Message: fmt.Sprintf(format, args...)}
}
