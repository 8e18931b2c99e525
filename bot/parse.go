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
		switch strings.ToLower(words[i]) {
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
