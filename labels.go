package procman

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Labels follow Kubernetes' rules, so that a selector written for one reads
// the same here: a name or value is at most 63 letters, digits, '-', '_' or
// '.', beginning and ending with a letter or digit (a value may be empty),
// and a key is a name, optionally after a prefix and '/': a DNS subdomain of
// lowercase letters, digits, '-' and '.', at most 253 characters.
const (
	maxLabelName   = 63
	maxLabelPrefix = 253
)

var (
	labelNameRE   = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	labelPrefixRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// checkLabelKey says what is wrong with a label key, or "".
func checkLabelKey(k string) string {
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		prefix, name = "", k
	}
	switch {
	case k == "":
		return "a key must not be empty"
	case hasPrefix && prefix == "":
		return fmt.Sprintf("key %q: the prefix before '/' must not be empty", k)
	case len(prefix) > maxLabelPrefix:
		return fmt.Sprintf("key %q: the prefix is %d characters, at most %d", k, len(prefix), maxLabelPrefix)
	case hasPrefix && !labelPrefixRE.MatchString(prefix):
		return fmt.Sprintf("key %q: the prefix must be a DNS subdomain: lowercase letters, digits, '-' and '.', "+
			"beginning and ending with a letter or digit", k)
	}
	if why := checkLabelName(name); why != "" {
		return fmt.Sprintf("key %q: the name %s", k, why)
	}
	return ""
}

// checkLabelValue says what is wrong with a label value, or "".
func checkLabelValue(v string) string {
	if v == "" {
		return ""
	}
	if why := checkLabelName(v); why != "" {
		return fmt.Sprintf("value %q %s", v, why)
	}
	return ""
}

func checkLabelName(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > maxLabelName:
		return fmt.Sprintf("is %d characters, at most %d", len(s), maxLabelName)
	case !labelNameRE.MatchString(s):
		return "must be letters, digits, '-', '_' or '.', beginning and ending with a letter or digit"
	}
	return ""
}

func (j Job) validateLabels() error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(j.Labels)) {
		if why := checkLabelKey(k); why != "" {
			errs = append(errs, invalid("labels", "%s", why))
		} else if why := checkLabelValue(j.Labels[k]); why != "" {
			errs = append(errs, invalid("labels", "%q: %s", k, why))
		}
	}
	return errors.Join(errs...)
}
