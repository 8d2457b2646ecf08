package procman

import (
	"os"
	"strings"
	"testing"
)

// TestVocabularyIsDocumented: every state, trigger, outcome, event kind,
// health, condition and overlap is named in the README, so that a new one cannot go unexplained.
func TestVocabularyIsDocumented(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	var words []string
	for _, v := range States() {
		words = append(words, string(v))
	}
	for _, v := range Triggers() {
		words = append(words, string(v))
	}
	for _, v := range Outcomes() {
		words = append(words, string(v))
	}
	for _, v := range EventKinds() {
		words = append(words, string(v))
	}
	for _, v := range Healths() {
		words = append(words, string(v))
	}
	for _, v := range Conditions() {
		words = append(words, string(v))
	}
	for _, v := range Overlaps() {
		words = append(words, string(v))
	}
	for _, w := range words {
		if !strings.Contains(readme, "`"+w+"`") {
			t.Errorf("the README never names `%s`", w)
		}
	}
}
