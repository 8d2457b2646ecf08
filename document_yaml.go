package procman

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxYAMLNodes bounds the values a YAML document may expand to: aliases
// repeat what they name, and a few lines of them nested ("billion laughs")
// would otherwise make gigabytes.
const maxYAMLNodes = 1 << 20

// parseYAMLTree reads one YAML document into a node tree, resolving aliases
// and merge keys (<<).
func parseYAMLTree(data []byte) (*node, error) {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, problemAt("", "", 1, "the document is empty (jobs: {} declares no jobs)")
		}
		return nil, yamlSyntaxError(err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		line := more.Line
		if err != nil {
			return nil, yamlSyntaxError(err)
		}
		return nil, problemAt("", "", line, "a second document (after ---): a file holds one")
	}
	p := yamlParser{budget: maxYAMLNodes}
	return p.value(&doc)
}

// yamlLine finds the line in the YAML library's error text ("yaml: line 3:
// ..."), which carries it only there: it is shown, never acted on.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

func yamlSyntaxError(err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	return problemAt("", "", line, "not YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

type yamlParser struct {
	budget int
	keys   []string            // of the mappings being read, from the root: jobs, a job's name, a field
	open   map[*yaml.Node]bool // the mappings and lists being read, from the root
}

// deref follows an alias to the value it names. An alias inside the value
// it names (&a {b: *a}, or a merge of it, <<: *a) would make the document
// infinite: it is refused, where the alias is.
func (p *yamlParser) deref(n *yaml.Node) (*yaml.Node, error) {
	line := n.Line
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if p.open[n] {
		return nil, p.at(problemAt("", "", line, "alias *%s is inside the value it names (line %d): it would never end", n.Anchor, n.Line))
	}
	return n, nil
}

// enter marks a mapping or list as being read, until leave.
func (p *yamlParser) enter(n *yaml.Node) {
	if p.open == nil {
		p.open = map[*yaml.Node]bool{}
	}
	p.open[n] = true
}

func (p *yamlParser) leave(n *yaml.Node) { delete(p.open, n) }

// at names the job and field a problem is in, as far as the parser is in
// them.
func (p *yamlParser) at(err error) error {
	fe, ok := err.(*FieldError)
	if !ok || fe.Job != "" || len(p.keys) < 2 || p.keys[0] != "jobs" {
		return err
	}
	fe.Job = p.keys[1]
	if len(p.keys) > 2 {
		fe.Field = p.keys[2]
	}
	return fe
}

func (p *yamlParser) value(n *yaml.Node) (*node, error) {
	if p.budget--; p.budget < 0 {
		return nil, p.at(problemAt("", "", n.Line, "the document expands to more than %d values (aliases repeat what they name)", maxYAMLNodes))
	}
	switch n.Kind {
	case yaml.DocumentNode:
		// "---" alone holds an empty scalar, on the line after it: empty too.
		if len(n.Content) == 0 || n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null" && n.Content[0].Value == "" {
			return nil, problemAt("", "", 1, "the document is empty (jobs: {} declares no jobs)")
		}
		return p.value(n.Content[0])
	case yaml.AliasNode:
		v, err := p.deref(n)
		if err != nil {
			return nil, err
		}
		return p.value(v)
	case yaml.SequenceNode:
		p.enter(n)
		defer p.leave(n)
		out := &node{line: n.Line, kind: arrayNode}
		for _, c := range n.Content {
			it, err := p.value(c)
			if err != nil {
				return nil, err
			}
			out.items = append(out.items, it)
		}
		return out, nil
	case yaml.MappingNode:
		members, err := p.members(n)
		return &node{line: n.Line, kind: objectNode, members: members}, err
	}
	raw, err := yamlScalar(n)
	if err != nil {
		return nil, p.at(err)
	}
	return &node{line: n.Line, kind: scalarNode, raw: raw}, nil
}

// members reads a mapping's keys in order. Merged keys (<<: *base, or a
// list of aliases) come after the mapping's own, and only those it does not
// give itself, the first merged mapping winning, as YAML's merge key has it.
// A key the mapping gives twice stays twice, for the caller to refuse.
func (p *yamlParser) members(n *yaml.Node) ([]member, error) {
	p.enter(n)
	defer p.leave(n)
	var own, merged []member
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return nil, p.at(problemAt("", "", k.Line, "a key must be a single value, not %s", yamlKind(k)))
		}
		if k.Tag == "!!merge" {
			m, err := p.merge(v)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		p.keys = append(p.keys, k.Value)
		val, err := p.value(v)
		p.keys = p.keys[:len(p.keys)-1]
		if err != nil {
			return nil, err
		}
		own = append(own, member{key: k.Value, line: k.Line, val: val})
	}
	given := map[string]bool{}
	for _, m := range own {
		given[m.key] = true
	}
	for _, m := range merged {
		if !given[m.key] {
			given[m.key] = true
			own = append(own, m)
		}
	}
	return own, nil
}

// merge reads the value of a merge key: a mapping, or a list of them.
func (p *yamlParser) merge(v *yaml.Node) ([]member, error) {
	v, err := p.deref(v)
	if err != nil {
		return nil, err
	}
	maps := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		maps = v.Content
	}
	var out []member
	for _, m := range maps {
		if m, err = p.deref(m); err != nil {
			return nil, err
		}
		if m.Kind != yaml.MappingNode {
			return nil, p.at(problemAt("", "", m.Line, "<< merges mappings, not %s", yamlKind(m)))
		}
		ms, err := p.members(m)
		if err != nil {
			return nil, err
		}
		out = append(out, ms...)
	}
	return out, nil
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return "a single value"
}

// yamlScalar is a scalar as JSON, by its resolved tag: a quoted or plain
// string is a string, 8080 a number, true a boolean, ~ or null a null.
func yamlScalar(n *yaml.Node) (json.RawMessage, error) {
	switch n.ShortTag() {
	case "!!str", "!!timestamp": // a date stays the text it is
		return json.Marshal(n.Value)
	case "!!null":
		return json.RawMessage("null"), nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, problemAt("", "", n.Line, "%v", err)
		}
		return json.Marshal(b)
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, problemAt("", "", n.Line, "the number %s is out of range", n.Value)
		}
		return json.Marshal(i)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, problemAt("", "", n.Line, "%s is not a number JSON can hold", n.Value)
		}
		return json.Marshal(f)
	}
	return nil, problemAt("", "", n.Line, "the tag %s is not supported: write the value plainly, or quote it", n.Tag)
}

// marshalYAML writes the document as YAML: "jobs:", then each job's fields
// in the API's order, strings quoted where YAML would read them otherwise.
func (d Document) marshalYAML() ([]byte, error) {
	jobs := &yaml.Node{Kind: yaml.MappingNode}
	if len(d.Jobs) == 0 {
		jobs.Style = yaml.FlowStyle // jobs: {}
	}
	for _, j := range d.Jobs {
		def, err := definitionJSON(j)
		if err != nil {
			return nil, err
		}
		tree, err := parseJSONTree(def)
		if err != nil {
			return nil, err
		}
		jobs.Content = append(jobs.Content, yamlString(j.Name), tree.yaml())
	}
	root := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{yamlString("jobs"), jobs}}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// yamlString is a string node, styled by the encoder so that it reads back
// as the same string: "8080", "yes" or "" quoted, a multi-line command as a
// literal block.
func yamlString(s string) *yaml.Node {
	n := &yaml.Node{}
	n.Encode(s) // a string always encodes
	return n
}

// yaml is the value as a YAML node.
func (n *node) yaml() *yaml.Node {
	switch n.kind {
	case objectNode:
		out := &yaml.Node{Kind: yaml.MappingNode}
		for _, m := range n.members {
			out.Content = append(out.Content, yamlString(m.key), m.val.yaml())
		}
		return out
	case arrayNode:
		out := &yaml.Node{Kind: yaml.SequenceNode}
		for _, it := range n.items {
			out.Content = append(out.Content, it.yaml())
		}
		return out
	}
	raw := string(n.raw)
	switch {
	case raw == "null":
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	case raw == "true" || raw == "false":
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: raw}
	case strings.HasPrefix(raw, `"`):
		var s string
		json.Unmarshal(n.raw, &s) // JSON this package wrote
		return yamlString(s)
	case strings.ContainsAny(raw, ".eE"):
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: raw}
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: raw}
}
