// Package prompts holds the starter prompt library and the fluency lessons that ship
// with tokenpay. They are embedded in the binary so that a fresh install has useful
// tips and lessons to offer before anyone has shared a prompt of their own.
package prompts

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

//go:embed starter.yaml lessons/*.md
var content embed.FS

const (
	starterFile = "starter.yaml"
	lessonsDir  = "lessons"

	// maxTitleLen keeps titles short enough for a Slack button, a Teams card
	// heading and a nudge's first line.
	maxTitleLen = 80

	// anyRole marks a prompt that fits every role.
	anyRole = "any"
)

var (
	workflows = []string{
		"research synthesis",
		"data analysis",
		"client deliverables",
		"slide drafting",
		"code review",
		"meeting notes",
		"writing clearly",
		"checking AI output",
		"automation",
	}
	roles = []string{"engineer", "analyst", "consultant", "designer", "manager", "sales", "operations", "hr", anyRole}

	kebab = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	// Placeholder names are restricted so the bot can turn each one into a form input.
	placeholderName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	lessonFileName  = regexp.MustCompile(`^([0-9]{2})-([a-z0-9]+(?:-[a-z0-9]+)*)\.md$`)
)

// Starter is a prompt from the starter library. Body is ready to paste, with
// {{placeholders}} for what the person fills in.
type Starter struct {
	Slug     string   `yaml:"slug"`
	Title    string   `yaml:"title"`
	Workflow string   `yaml:"workflow"`
	Body     string   `yaml:"body"`
	Roles    []string `yaml:"roles"`
	Tags     []string `yaml:"tags"`
}

// Lesson is one step of the fluency path. A person completes it by answering
// Reflection; Body is markdown.
type Lesson struct {
	Order      int
	ID         string
	Title      string
	Reflection string
	Body       string
	Minutes    int
}

// Workflows returns the workflows a starter prompt can belong to, in display order.
func Workflows() []string { return slices.Clone(workflows) }

// Roles returns the roles a starter prompt can be aimed at; "any" fits every role.
func Roles() []string { return slices.Clone(roles) }

// FitsRole reports whether the prompt suits a person with the given role. Roles come
// from a directory import, so the comparison ignores case and surrounding spaces.
func (s Starter) FitsRole(role string) bool {
	role = strings.TrimSpace(role)
	for _, r := range s.Roles {
		if strings.EqualFold(r, anyRole) || (role != "" && strings.EqualFold(r, role)) {
			return true
		}
	}
	return false
}

// StarterPrompts returns the embedded starter library, in file order.
func StarterPrompts() ([]Starter, error) {
	data, err := content.ReadFile(starterFile)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", starterFile, err)
	}
	starters, err := parseStarters(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", starterFile, err)
	}
	return starters, nil
}

// parseStarters decodes and validates a starter library, reporting every problem
// at once so that whoever edits the file can fix them in one pass.
func parseStarters(data []byte) ([]Starter, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var starters []Starter
	if err := dec.Decode(&starters); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no prompts")
		}
		return nil, err
	}
	if len(starters) == 0 {
		return nil, errors.New("no prompts")
	}

	var errs []error
	seen := make(map[string]bool, len(starters))
	for i := range starters {
		s := &starters[i]
		s.Body = strings.TrimSpace(s.Body)
		name := s.Slug
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		for _, p := range s.problems() {
			errs = append(errs, fmt.Errorf("prompt %s: %s", name, p))
		}
		if s.Slug != "" && seen[s.Slug] {
			errs = append(errs, fmt.Errorf("prompt %s: slug used more than once", name))
		}
		seen[s.Slug] = true
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return starters, nil
}

func (s Starter) problems() []string {
	var ps []string
	if !kebab.MatchString(s.Slug) {
		ps = append(ps, fmt.Sprintf("slug %q must be kebab-case", s.Slug))
	}
	ps = append(ps, titleProblems(s.Title)...)
	if !slices.Contains(workflows, s.Workflow) {
		ps = append(ps, fmt.Sprintf("workflow %q must be one of %s", s.Workflow, strings.Join(workflows, ", ")))
	}
	if len(s.Roles) == 0 {
		ps = append(ps, "roles are empty")
	}
	for _, r := range s.Roles {
		if !slices.Contains(roles, r) {
			ps = append(ps, fmt.Sprintf("role %q must be one of %s", r, strings.Join(roles, ", ")))
		}
	}
	if len(s.Tags) == 0 {
		ps = append(ps, "tags are empty")
	}
	for _, t := range s.Tags {
		if !kebab.MatchString(t) {
			ps = append(ps, fmt.Sprintf("tag %q must be kebab-case", t))
		}
	}
	if s.Body == "" {
		ps = append(ps, "body is empty")
	} else if names, err := placeholders(s.Body); err != nil {
		ps = append(ps, fmt.Sprintf("body: %v", err))
	} else if len(names) == 0 {
		// A starter prompt that needs nothing filled in is advice, not a prompt.
		ps = append(ps, "body has no {{placeholder}}")
	}
	return ps
}

func titleProblems(title string) []string {
	switch n := utf8.RuneCountInString(title); {
	case strings.TrimSpace(title) == "":
		return []string{"title is empty"}
	case n > maxTitleLen:
		return []string{fmt.Sprintf("title is %d characters, at most %d allowed", n, maxTitleLen)}
	}
	return nil
}

// placeholders returns the names of the {{placeholders}} in body, in order of
// appearance. Single braces are left alone; a "{{" or "}}" without its partner, or
// a name that is not lower snake_case, is an error.
func placeholders(body string) ([]string, error) {
	var names []string
	for rest := body; ; {
		open := strings.Index(rest, "{{")
		closing := strings.Index(rest, "}}")
		switch {
		case open < 0 && closing < 0:
			return names, nil
		case open < 0 || (closing >= 0 && closing < open):
			return nil, fmt.Errorf(`"}}" without "{{" before %q`, excerpt(rest[closing:]))
		case closing < 0:
			return nil, fmt.Errorf(`"{{" without "}}" at %q`, excerpt(rest[open:]))
		}
		name := rest[open+2 : closing]
		if !placeholderName.MatchString(name) {
			return nil, fmt.Errorf("placeholder {{%s}}: name must be lower snake_case", name)
		}
		names = append(names, name)
		rest = rest[closing+2:]
	}
}

// excerpt shortens s for an error message.
func excerpt(s string) string {
	const limit = 30
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	return string([]rune(s)[:limit]) + "…"
}

// Lessons returns the embedded fluency lessons, ordered by the NN prefix of their
// file names.
func Lessons() ([]Lesson, error) {
	dir, err := fs.Sub(content, lessonsDir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", lessonsDir, err)
	}
	lessons, err := parseLessons(dir)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", lessonsDir, err)
	}
	return lessons, nil
}

// lessonFrontMatter is the YAML block at the top of a lesson file.
type lessonFrontMatter struct {
	ID         string `yaml:"id"`
	Title      string `yaml:"title"`
	Minutes    int    `yaml:"minutes"`
	Reflection string `yaml:"reflection"`
}

// parseLessons reads every NN-slug.md file in dir. The numbers must run 1..N without
// gaps, because the fluency path tells people which lesson comes next.
func parseLessons(dir fs.FS) ([]Lesson, error) {
	entries, err := fs.ReadDir(dir, ".")
	if err != nil {
		return nil, fmt.Errorf("list lessons: %w", err)
	}
	type file struct {
		name   string
		lesson Lesson
	}
	var (
		files []file
		errs  []error
	)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		l, err := readLesson(dir, e.Name())
		if err != nil {
			errs = append(errs, fmt.Errorf("lesson %s: %w", e.Name(), err))
			continue
		}
		files = append(files, file{e.Name(), l})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, errors.New("no lessons")
	}
	slices.SortStableFunc(files, func(a, b file) int { return a.lesson.Order - b.lesson.Order })

	lessons := make([]Lesson, 0, len(files))
	ids := make(map[string]string, len(files))
	prev := file{}
	for _, f := range files {
		switch n := f.lesson.Order; {
		case n == prev.lesson.Order && prev.name != "":
			errs = append(errs, fmt.Errorf("lesson %s: number %02d already used by %s", f.name, n, prev.name))
		case n != prev.lesson.Order+1:
			errs = append(errs, fmt.Errorf("lesson %s: number %02d, expected %02d; lessons are numbered from 01 without gaps", f.name, n, prev.lesson.Order+1))
		}
		if other, ok := ids[f.lesson.ID]; ok {
			errs = append(errs, fmt.Errorf("lesson %s: id %q already used by %s", f.name, f.lesson.ID, other))
		}
		ids[f.lesson.ID] = f.name
		lessons = append(lessons, f.lesson)
		prev = f
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return lessons, nil
}

// readLesson parses one lesson file: YAML front matter between "---" lines, then markdown.
func readLesson(dir fs.FS, name string) (Lesson, error) {
	m := lessonFileName.FindStringSubmatch(name)
	if m == nil {
		return Lesson{}, errors.New("file name must look like NN-slug.md")
	}
	order, err := strconv.Atoi(m[1])
	if err != nil {
		return Lesson{}, fmt.Errorf("number %q: %w", m[1], err)
	}
	data, err := fs.ReadFile(dir, name)
	if err != nil {
		return Lesson{}, fmt.Errorf("read: %w", err)
	}
	front, body, err := splitFrontMatter(string(data))
	if err != nil {
		return Lesson{}, err
	}

	dec := yaml.NewDecoder(strings.NewReader(front))
	dec.KnownFields(true)
	var fm lessonFrontMatter
	if err := dec.Decode(&fm); err != nil {
		if errors.Is(err, io.EOF) {
			return Lesson{}, errors.New("front matter is empty")
		}
		return Lesson{}, fmt.Errorf("front matter: %w", err)
	}

	var ps []string
	if fm.ID != m[2] {
		ps = append(ps, fmt.Sprintf("id %q must match the file name's slug %q", fm.ID, m[2]))
	}
	ps = append(ps, titleProblems(fm.Title)...)
	if fm.Minutes <= 0 {
		ps = append(ps, "minutes must be positive")
	}
	if strings.TrimSpace(fm.Reflection) == "" {
		ps = append(ps, "reflection is empty")
	}
	if body == "" {
		ps = append(ps, "body is empty")
	}
	if len(ps) > 0 {
		return Lesson{}, errors.New(strings.Join(ps, "; "))
	}
	return Lesson{
		Order:      order,
		ID:         fm.ID,
		Title:      fm.Title,
		Reflection: strings.TrimSpace(fm.Reflection),
		Body:       body,
		Minutes:    fm.Minutes,
	}, nil
}

// splitFrontMatter separates the YAML block that opens a markdown file from the rest.
func splitFrontMatter(text string) (front, body string, err error) {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	rest, ok := strings.CutPrefix(text, "---\n")
	if !ok {
		return "", "", errors.New(`missing front matter: the file must start with a line "---"`)
	}
	// The leading newline lets an empty block ("---\n---\n") match too.
	front, body, ok = strings.Cut("\n"+rest+"\n", "\n---\n")
	if !ok {
		return "", "", errors.New(`front matter has no closing line "---"`)
	}
	return strings.TrimPrefix(front, "\n"), strings.TrimSpace(body), nil
}
