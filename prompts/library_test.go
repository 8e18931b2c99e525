package prompts

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"unicode"
	"unicode/utf8"
)

func TestStarterPromptsContent(t *testing.T) {
	starters, err := StarterPrompts()
	if err != nil {
		t.Fatalf("StarterPrompts: %v", err)
	}
	if len(starters) < 44 {
		t.Errorf("got %d starter prompts, want at least 44", len(starters))
	}

	perWorkflow := map[string]int{}
	slugs := map[string]bool{}
	quality := 0
	for _, s := range starters {
		perWorkflow[s.Workflow]++
		if slugs[s.Slug] {
			t.Errorf("slug %s used twice", s.Slug)
		}
		slugs[s.Slug] = true
		if s.Slug == "" || s.Title == "" || s.Workflow == "" || s.Body == "" || len(s.Roles) == 0 || len(s.Tags) == 0 {
			t.Errorf("prompt %q has an empty field: %+v", s.Slug, s)
		}
		if n := utf8.RuneCountInString(s.Title); n > maxTitleLen {
			t.Errorf("prompt %s: title has %d characters, want at most %d", s.Slug, n, maxTitleLen)
		}
		names, err := placeholders(s.Body)
		if err != nil {
			t.Errorf("prompt %s: %v", s.Slug, err)
		}
		if len(names) == 0 {
			t.Errorf("prompt %s: no {{placeholder}} in body", s.Slug)
		}
		if slices.Contains(s.Tags, "quality") {
			quality++
		}
	}

	for _, w := range Workflows() {
		want := 5
		if w == "automation" {
			want = 3
		}
		if perWorkflow[w] < want {
			t.Errorf("workflow %q has %d prompts, want at least %d", w, perWorkflow[w], want)
		}
	}
	if quality < 4 {
		t.Errorf("got %d prompts tagged quality, want at least 4", quality)
	}
	for _, r := range Roles() {
		fits := 0
		for _, s := range starters {
			if s.FitsRole(r) {
				fits++
			}
		}
		if fits < 4 {
			t.Errorf("role %q fits %d prompts, want at least 4", r, fits)
		}
	}
}

func TestLessonsContent(t *testing.T) {
	lessons, err := Lessons()
	if err != nil {
		t.Fatalf("Lessons: %v", err)
	}
	if len(lessons) < 6 {
		t.Fatalf("got %d lessons, want at least 6", len(lessons))
	}
	// The first six follow the fluency path the product promises, in this order.
	path := []string{
		"what-is-a-token",
		"writing-a-specific-prompt",
		"giving-context",
		"checking-output",
		"automating-a-repeated-task",
		"measuring-impact",
	}
	ids := map[string]bool{}
	for i, l := range lessons {
		if l.Order != i+1 {
			t.Errorf("lesson %d (%s) has order %d", i+1, l.ID, l.Order)
		}
		if i < len(path) && l.ID != path[i] {
			t.Errorf("lesson %d is %s, want %s", i+1, l.ID, path[i])
		}
		if ids[l.ID] {
			t.Errorf("lesson id %s used twice", l.ID)
		}
		ids[l.ID] = true
		if l.Title == "" || l.Reflection == "" || l.Minutes <= 0 {
			t.Errorf("lesson %s: empty title, reflection or minutes: %+v", l.ID, l)
		}
		if n := utf8.RuneCountInString(l.Title); n > maxTitleLen {
			t.Errorf("lesson %s: title has %d characters, want at most %d", l.ID, n, maxTitleLen)
		}
		if n := wordCount(l.Body); n < 150 || n > 350 {
			t.Errorf("lesson %s: body has %d words, want 150 to 350", l.ID, n)
		}
		if strings.HasPrefix(l.Body, "---") || strings.Contains(l.Body, "reflection:") {
			t.Errorf("lesson %s: front matter leaked into the body", l.ID)
		}
		// Each lesson reminds people that tokens are an allowance to use well.
		if !strings.Contains(strings.ToLower(l.Body), "allowance") {
			t.Errorf("lesson %s does not mention the allowance", l.ID)
		}
	}
}

// competitive matches words that turn token use into a contest or a judgement of
// people, which the product promises never to do.
var competitive = regexp.MustCompile(`(?i)\b(leaderboards?|rank(s|ed|ing|ings)?|top users?|lazy|laziness|slackers?|shame[ds]?|shameful|shaming)\b`)

func TestCompetitivePattern(t *testing.T) {
	tests := []struct {
		text string
		want bool
	}{
		{"see the Leaderboard", true},
		{"teams ranked by use", true},
		{"our top user this month", true},
		{"don't be lazy", true},
		{"no shaming", true},
		{"a frank answer", false},
		{"post it in Slack", false},
		{"sorted by date", false},
	}
	for _, tt := range tests {
		if got := competitive.MatchString(tt.text); got != tt.want {
			t.Errorf("competitive.MatchString(%q) = %v, want %v", tt.text, got, tt.want)
		}
	}
}

func TestNoCompetitiveLanguage(t *testing.T) {
	starters, err := StarterPrompts()
	if err != nil {
		t.Fatalf("StarterPrompts: %v", err)
	}
	lessons, err := Lessons()
	if err != nil {
		t.Fatalf("Lessons: %v", err)
	}
	texts := map[string]string{}
	for _, s := range starters {
		texts["prompt "+s.Slug] = strings.Join(append([]string{s.Slug, s.Title, s.Workflow, s.Body}, s.Tags...), "\n")
	}
	for _, l := range lessons {
		texts["lesson "+l.ID] = strings.Join([]string{l.ID, l.Title, l.Reflection, l.Body}, "\n")
	}
	for name, text := range texts {
		if m := competitive.FindAllString(text, -1); m != nil {
			t.Errorf("%s uses competitive or shaming words: %q", name, m)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr string
	}{
		{name: "none", body: "Summarise this.", want: nil},
		{name: "one", body: "Summarise {{report}} please.", want: []string{"report"}},
		{name: "several and repeated", body: "{{a}} then {{b_2}} then {{a}}", want: []string{"a", "b_2", "a"}},
		{name: "single braces left alone", body: `JSON like {"k": 1} and {{field}}`, want: []string{"field"}},
		{name: "unclosed", body: "Fill {{audience here", wantErr: `"{{" without "}}"`},
		{name: "stray close", body: "Fill audience}} here", wantErr: `"}}" without "{{"`},
		{name: "close before open", body: "x}} {{y}}", wantErr: `"}}" without "{{"`},
		{name: "empty name", body: "Fill {{}} here", wantErr: "lower snake_case"},
		{name: "spaces", body: "Fill {{the audience}}", wantErr: "lower snake_case"},
		{name: "upper case", body: "Fill {{Audience}}", wantErr: "lower snake_case"},
		{name: "nested", body: "Fill {{a {{b}} }}", wantErr: "lower snake_case"},
		{name: "triple braces", body: "Fill {{{a}}}", wantErr: "lower snake_case"},
		{name: "second one unclosed", body: "{{a}} and {{b", wantErr: `"{{" without "}}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := placeholders(tt.body)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("placeholders(%q) error = %v, want one containing %q", tt.body, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("placeholders(%q): %v", tt.body, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("placeholders(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestParseStartersErrors(t *testing.T) {
	const good = `
- slug: good-one
  title: A good prompt
  workflow: meeting notes
  roles: [any]
  tags: [meetings]
  body: Summarise {{notes}}.
`
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{name: "empty file", yaml: "", want: []string{"no prompts"}},
		{name: "empty list", yaml: "[]", want: []string{"no prompts"}},
		{name: "unknown field", yaml: good + "  author: me\n", want: []string{"author"}},
		{name: "duplicate slug", yaml: good + good, want: []string{"prompt good-one: slug used more than once"}},
		{
			name: "every problem of an entry at once",
			yaml: `
- slug: Bad_Slug
  title: ` + strings.Repeat("x", 81) + `
  workflow: gardening
  roles: [engineer, astronaut]
  tags: [Not Kebab]
  body: Fill {{oops
`,
			want: []string{
				`prompt Bad_Slug: slug "Bad_Slug" must be kebab-case`,
				"prompt Bad_Slug: title is 81 characters",
				`prompt Bad_Slug: workflow "gardening"`,
				`prompt Bad_Slug: role "astronaut"`,
				`prompt Bad_Slug: tag "Not Kebab"`,
				`prompt Bad_Slug: body: "{{" without "}}"`,
			},
		},
		{
			name: "missing fields named by position",
			yaml: good + "- slug: \"\"\n",
			want: []string{"prompt #2: title is empty", "prompt #2: roles are empty", "prompt #2: tags are empty", "prompt #2: body is empty"},
		},
		{
			name: "no placeholder",
			yaml: strings.Replace(good, "Summarise {{notes}}.", "Summarise the notes.", 1),
			want: []string{"prompt good-one: body has no {{placeholder}}"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStarters([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("parseStarters succeeded with %d prompts, want an error", len(got))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}

	got, err := parseStarters([]byte(good))
	if err != nil {
		t.Fatalf("parseStarters(good): %v", err)
	}
	want := Starter{Slug: "good-one", Title: "A good prompt", Workflow: "meeting notes", Body: "Summarise {{notes}}.", Roles: []string{"any"}, Tags: []string{"meetings"}}
	if len(got) != 1 || !equalStarter(got[0], want) {
		t.Errorf("parseStarters(good) = %+v, want [%+v]", got, want)
	}
}

func equalStarter(a, b Starter) bool {
	return a.Slug == b.Slug && a.Title == b.Title && a.Workflow == b.Workflow && a.Body == b.Body &&
		slices.Equal(a.Roles, b.Roles) && slices.Equal(a.Tags, b.Tags)
}

func lessonFile(id, body string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte("---\nid: " + id + "\ntitle: Title of " + id +
		"\nminutes: 3\nreflection: \"In one line: why?\"\n---\n\n" + body + "\n")}
}

func TestParseLessons(t *testing.T) {
	dir := fstest.MapFS{
		"02-second.md": lessonFile("second", "Second body."),
		"01-first.md": {Data: []byte("---\r\nid: first\r\ntitle: First\r\nminutes: 2\r\n" +
			"reflection: \"  In one line: what?  \"\r\n---\r\n\r\n## Heading\r\n\r\nFirst body.\r\n")},
	}
	got, err := parseLessons(dir)
	if err != nil {
		t.Fatalf("parseLessons: %v", err)
	}
	want := []Lesson{
		{Order: 1, ID: "first", Title: "First", Reflection: "In one line: what?", Body: "## Heading\n\nFirst body.", Minutes: 2},
		{Order: 2, ID: "second", Title: "Title of second", Reflection: "In one line: why?", Body: "Second body.", Minutes: 3},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseLessons =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseLessonsErrors(t *testing.T) {
	tests := []struct {
		name string
		dir  fstest.MapFS
		want []string
	}{
		{name: "no lessons", dir: fstest.MapFS{}, want: []string{"no lessons"}},
		{
			name: "bad file name",
			dir:  fstest.MapFS{"1-first.md": lessonFile("first", "Body.")},
			want: []string{"lesson 1-first.md: file name must look like NN-slug.md"},
		},
		{
			name: "no front matter",
			dir:  fstest.MapFS{"01-first.md": {Data: []byte("# Just markdown\n")}},
			want: []string{"lesson 01-first.md: missing front matter"},
		},
		{
			name: "unclosed front matter",
			dir:  fstest.MapFS{"01-first.md": {Data: []byte("---\nid: first\n")}},
			want: []string{`lesson 01-first.md: front matter has no closing line`},
		},
		{
			name: "empty front matter",
			dir:  fstest.MapFS{"01-first.md": {Data: []byte("---\n---\nBody.\n")}},
			want: []string{"lesson 01-first.md: front matter is empty"},
		},
		{
			name: "unknown front matter field",
			dir:  fstest.MapFS{"01-first.md": {Data: []byte("---\nid: first\nauthor: me\n---\nBody.\n")}},
			want: []string{"lesson 01-first.md: front matter", "author"},
		},
		{
			name: "missing fields and id mismatch",
			dir:  fstest.MapFS{"01-first.md": {Data: []byte("---\nid: other\n---\n")}},
			want: []string{
				"lesson 01-first.md: ",
				`id "other" must match the file name's slug "first"`,
				"title is empty",
				"minutes must be positive",
				"reflection is empty",
				"body is empty",
			},
		},
		{
			name: "gap in numbers",
			dir: fstest.MapFS{
				"01-first.md": lessonFile("first", "Body."),
				"03-third.md": lessonFile("third", "Body."),
			},
			want: []string{"lesson 03-third.md: number 03, expected 02"},
		},
		{
			name: "does not start at one",
			dir:  fstest.MapFS{"00-zero.md": lessonFile("zero", "Body.")},
			want: []string{"lesson 00-zero.md: number 00, expected 01"},
		},
		{
			name: "repeated number",
			dir: fstest.MapFS{
				"01-first.md": lessonFile("first", "Body."),
				"01-again.md": lessonFile("again", "Body."),
			},
			want: []string{"lesson 01-first.md: number 01 already used by 01-again.md"},
		},
		{
			name: "repeated id",
			dir: fstest.MapFS{
				"01-first.md": lessonFile("first", "Body."),
				"02-first.md": lessonFile("first", "Body."),
			},
			want: []string{`lesson 02-first.md: id "first" already used by 01-first.md`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLessons(tt.dir)
			if err == nil {
				t.Fatalf("parseLessons succeeded with %d lessons, want an error", len(got))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestFitsRole(t *testing.T) {
	tests := []struct {
		name  string
		roles []string
		role  string
		want  bool
	}{
		{"listed role", []string{"engineer", "analyst"}, "analyst", true},
		{"case and spaces ignored", []string{"hr"}, " HR ", true},
		{"other role", []string{"engineer"}, "sales", false},
		{"any fits everyone", []string{"any"}, "designer", true},
		{"any fits an unknown role", []string{"any"}, "astronaut", true},
		{"any fits an empty role", []string{"any"}, "", true},
		{"empty role fits only any", []string{"engineer"}, "", false},
		{"no roles", nil, "engineer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (Starter{Roles: tt.roles}).FitsRole(tt.role); got != tt.want {
				t.Errorf("Starter{Roles: %q}.FitsRole(%q) = %v, want %v", tt.roles, tt.role, got, tt.want)
			}
		})
	}
}

func TestWorkflowsAndRolesAreCopies(t *testing.T) {
	w := Workflows()
	w[0] = "changed"
	if Workflows()[0] == "changed" {
		t.Error("Workflows returns the package's own slice; callers could change it")
	}
	r := Roles()
	r[0] = "changed"
	if Roles()[0] == "changed" {
		t.Error("Roles returns the package's own slice; callers could change it")
	}
}

// wordCount counts words the way a reader would: markdown markers such as "#", "-"
// and ">" are not words.
func wordCount(text string) int {
	n := 0
	for _, f := range strings.Fields(text) {
		if strings.IndexFunc(f, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0 {
			n++
		}
	}
	return n
}
