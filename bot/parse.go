package bot

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Command is a parsed line of text: "/tokens request 5000 summarise interviews".
type Command struct {
	Name string   // lower case; "balance" when the text is empty
	Args []string // the words after the name
	Rest string   // the text after the name, spacing kept
}

// MaxCommandBytes bounds what one command may carry; longer text is refused, not cut.
const MaxCommandBytes = 4000

// ParseCommand splits command text. It accepts "/tokens balance", "tokens balance" and
// "balance" alike.
func ParseCommand(text string) Command {
	text = strings.TrimSpace(text)
	for _, prefix := range []string{"/tokens", "tokens"} {
		if len(text) >= len(prefix) && strings.EqualFold(text[:len(prefix)], prefix) {
			rest := text[len(prefix):]
			// Any space ends the prefix word: chat clients send no-break spaces and CRs too.
			if r, _ := utf8.DecodeRuneInString(rest); rest == "" || unicode.IsSpace(r) {
				text = strings.TrimSpace(rest)
				break
			}
		}
	}
	if text == "" {
		return Command{Name: "balance"}
	}
	name, rest := text, ""
	if i := strings.IndexFunc(text, unicode.IsSpace); i >= 0 {
		name, rest = text[:i], strings.TrimSpace(text[i:])
	}
	return Command{Name: strings.ToLower(name), Args: strings.Fields(rest), Rest: rest}
}

// impactText splits "shipped the report --hours 2.5 --link https://x" into its parts.
func impactText(rest string) (text string, minutes int64, link string, problem string) {
	words := strings.Fields(rest)
	var kept []string
	for i := 0; i < len(words); i++ {
		switch strings.ToLower(normaliseFlag(words[i])) {
		case "--hours", "-h":
			if i+1 >= len(words) {
				return "", 0, "", "--hours needs a number, e.g. --hours 1.5"
			}
			h, err := strconv.ParseFloat(words[i+1], 64)
			if err != nil || h < 0 || h > 1000 || h != h {
				return "", 0, "", "--hours needs a number of hours from 0 to 1000, e.g. --hours 1.5"
			}
			minutes = int64(h*60 + 0.5)
			i++
		case "--link":
			if i+1 >= len(words) {
				return "", 0, "", "--link needs a web address, e.g. --link https://wiki/report"
			}
			u, err := url.Parse(words[i+1])
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return "", 0, "", "--link needs a web address starting with https://"
			}
			link = u.String()
			i++
		default:
			kept = append(kept, words[i])
		}
	}
	return strings.Join(kept, " "), minutes, link, ""
}

// cleanText trims user text and checks its length in characters.
func cleanText(s string, maxRunes int) (string, bool) {
	s = strings.TrimSpace(s)
	return s, s != "" && utf8.RuneCountInString(s) <= maxRunes && utf8.ValidString(s)
}

// splitAmount takes the amount off the front of text as people type it: "50k …",
// "50 k …", "50,000 credits …", "1.5 M credits …". The amount is the first word, plus a
// following unit word ("k", "m") when the number has none, plus a following "credit" or
// "credits"; rest is what follows, spacing kept. ledger.ParseAmount reads the amount.
func splitAmount(text string) (amount, rest string) {
	text = strings.TrimSpace(text)
	end := 0
	next := func(from int) (string, int, int) {
		i := from
		for i < len(text) {
			r, size := utf8.DecodeRuneInString(text[i:])
			if !unicode.IsSpace(r) {
				break
			}
			i += size
		}
		j := i
		for j < len(text) {
			r, size := utf8.DecodeRuneInString(text[j:])
			if unicode.IsSpace(r) {
				break
			}
			j += size
		}
		return text[i:j], i, j
	}
	first, _, e := next(0)
	if first == "" {
		return "", ""
	}
	end = e
	if last := strings.ToLower(first[len(first)-1:]); last != "k" && last != "m" {
		if w, _, e := next(end); strings.EqualFold(w, "k") || strings.EqualFold(w, "m") {
			end = e
		}
	}
	if w, _, e := next(end); strings.EqualFold(w, "credits") || strings.EqualFold(w, "credit") {
		end = e
	}
	return text[:end], strings.TrimSpace(text[end:])
}

// dashes that chat clients and macOS put in place of "--" as people type it.
var flagDashes = strings.NewReplacer("\u2014", "--", "\u2013", "--", "\u2212", "-")

// normaliseFlag turns "—hours", "–hours" and "--hours" alike into "--hours"; other words
// are returned as they are.
func normaliseFlag(word string) string {
	if !strings.HasPrefix(word, "\u2014") && !strings.HasPrefix(word, "\u2013") {
		return word
	}
	w := flagDashes.Replace(word)
	for strings.HasPrefix(w, "---") {
		w = w[1:]
	}
	return w
}

// suggest returns the known name closest to what was typed, when it is a likely typo
// (at most two edits, and fewer than half the letters).
func suggest(typed string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		d := editDistance(typed, k)
		if d < bestD && d*2 < len([]rune(k)) {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance counts the edits between a and b, by runes: insertions, deletions,
// substitutions and swaps of neighbours ("tema" is one edit from "team").
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 64
	}
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
