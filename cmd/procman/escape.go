package main

import (
	"bytes"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// printable is s made safe for a terminal: control characters (C0, DEL,
// C1), bidirectional controls and bytes that are not UTF-8 are shown as
// escapes (\n, \t, \x1b, \u009b, \u202e, \xff). A job's command, environment
// or error then cannot recolour the terminal, move its cursor, set its title
// or hide text from whoever lists the job; and a tab or a newline in a field
// cannot break a table's columns.
func printable(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unsafeRune(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for _, r := range s { // a byte that is not UTF-8 comes as utf8.RuneError
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || unsafeRune(r) {
			return true
		}
	}
	return false
}

// unsafeRune: C1 controls (U+0080-U+009F: U+009B is a CSI to some terminals)
// and the bidirectional controls that reorder what is shown.
func unsafeRune(r rune) bool {
	return r >= 0x80 && r <= 0x9f || unicode.Is(unicode.Bidi_Control, r)
}

// jsonSafe is JSON text with the characters a terminal may act on that JSON
// allows raw (DEL, C1 controls, bidirectional controls; JSON escapes the
// other controls already) written as \u escapes. The JSON means the same: in
// valid JSON those characters occur only inside strings.
func jsonSafe(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r == 0x7f || unsafeRune(r) }) {
		return b
	}
	var out bytes.Buffer
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == 0x7f || unsafeRune(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[:size])
		}
		b = b[size:]
	}
	return out.Bytes()
}
