package slack

import "strings"

// Text from Slack arrives in Slack's message format
// (https://docs.slack.dev/messaging/formatting-message-text): &, < and > that a person
// typed are sent as &amp;, &lt; and &gt;, and a raw < only ever opens markup such as
// <@U123>, <!channel> or <https://x|label>. tokenpay stores text as the person typed
// it, so it is decoded once here, on the way in; escape encodes it once on the way out.

// entities decodes exactly the three entities Slack encodes, in one pass, so that
// "&amp;lt;" (a person typing "&lt;") becomes "&lt;" and nothing is decoded twice.
var entities = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// decodeEntities reads a value Slack encoded without markup (a modal's text input).
func decodeEntities(s string) string { return entities.Replace(s) }

// Unformat turns message-format text (slash command text, a message event, a message
// shortcut's message) into what the person typed, with mentions and links as readable
// text that pings no one when shown again:
//
//	<@U123|ann> → @ann, <@U123> → @U123, <#C123|general> → #general,
//	<!channel> → @channel, <!subteam^S1|@design> → @design, <!date^…|Nov 30> → Nov 30,
//	<https://x|label> → label (https://x), <https://x> → https://x, <mailto:a@b|a@b> → a@b,
//
// then &lt; &gt; &amp; are decoded once. A < without its > is kept as it is.
func Unformat(s string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			break
		}
		b.WriteString(decodeEntities(s[:i]))
		b.WriteString(unformatToken(s[i+1 : i+j]))
		s = s[i+j+1:]
	}
	b.WriteString(decodeEntities(s))
	return b.String()
}

func unformatToken(tok string) string {
	target, label, labelled := strings.Cut(tok, "|")
	target, label = decodeEntities(target), decodeEntities(label)
	labelled = labelled && label != ""
	switch {
	case strings.HasPrefix(target, "@"):
		if labelled {
			return "@" + strings.TrimPrefix(label, "@")
		}
		return target
	case strings.HasPrefix(target, "#"):
		if labelled {
			return "#" + strings.TrimPrefix(label, "#")
		}
		return target
	case strings.HasPrefix(target, "!"):
		if labelled {
			return label
		}
		name, _, _ := strings.Cut(target[1:], "^")
		return "@" + name
	case strings.HasPrefix(target, "mailto:"):
		if labelled {
			return label
		}
		return strings.TrimPrefix(target, "mailto:")
	}
	if labelled && label != target {
		return label + " (" + target + ")"
	}
	return target
}
