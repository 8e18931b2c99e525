package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/prompts"
)

type lessonRow struct {
	Title string
	Done  time.Time
}

type meData struct {
	Person    ledger.Person
	Balance   ledger.Balance
	Used      int64
	Total     int64
	UsedPct   int
	DaysLeft  int
	History   []ledger.Activity
	Requests  []ledger.Request
	Impacts   []ledger.Impact
	Lessons   []lessonRow
	LessonsOf int
	Prompts   []ledger.Prompt
	Panels    []Panel
	Loc       *time.Location
}

func (s *Server) mePage(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/dashboard/people/"+strconv.FormatInt(viewerOf(r).Person.ID, 10), http.StatusSeeOther)
}

// ownPage answers whether the path names the viewer; anyone else's page is 403, for
// admins and managers too: a person's page is theirs alone.
func (s *Server) ownPage(w http.ResponseWriter, r *http.Request) bool {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id != viewerOf(r).Person.ID {
		s.forbidden(w, r, "This page belongs to someone else: each person's page is theirs alone. Yours is under My tokens.")
		return false
	}
	return true
}

func (s *Server) personPanels(ctx context.Context, p ledger.Person) ([]Panel, error) {
	people := []ledger.Person{p}
	figs, err := s.figures(ctx, s.Now(), people, []int64{p.ID})
	if err != nil {
		return nil, err
	}
	id := strconv.FormatInt(p.ID, 10)
	c := creditsOverTime("my-credits", "you", figs)
	c.Series[0].Name = "Granted"
	c.Table.Head[1] = "Granted"
	out := &Chart{ID: "my-outcomes", Title: "Your outcomes per period", Kind: "line",
		Series: []Series{{Name: "Outcomes logged"}, {Name: "Hours saved"}},
		Table:  Table{Head: []string{"Period", "Credits used", "Outcomes logged", "Validated", "Hours saved"}}}
	for _, f := range figs {
		out.Labels = append(out.Labels, f.Period.Name)
		out.Series[0].Values = append(out.Series[0].Values, float64(f.Logged))
		out.Series[1].Values = append(out.Series[1].Values, float64(f.Minutes)/60)
		out.Table.Rows = append(out.Table.Rows, []string{f.Period.Name, itoa(f.Spent), strconv.Itoa(f.Logged), strconv.Itoa(f.Validated), hoursText(f.Minutes)})
	}
	out.Desc = "The outcomes you logged and the hours they saved, per period."
	return []Panel{
		{Heading: "Your credits over time", Chart: c, CSV: "/dashboard/people/" + id + "/csv/my-credits"},
		{Heading: "Your outcomes per period", Chart: out, CSV: "/dashboard/people/" + id + "/csv/my-outcomes"},
	}, nil
}

func (s *Server) personPage(w http.ResponseWriter, r *http.Request) {
	if !s.ownPage(w, r) {
		return
	}
	ctx := r.Context()
	p := viewerOf(r).Person
	now := s.Now()
	start, end := s.Policy.PeriodStart(now), s.Policy.PeriodEnd(now)
	d := meData{Person: p, Loc: s.Policy.Location()}
	var err error
	fail := func(err error) { s.fail(w, r, err) }
	if d.Balance, err = s.Store.Balance(ctx, p.ID, start, end); err != nil {
		fail(err)
		return
	}
	d.Used = d.Balance.Spent - d.Balance.Overage
	d.Total = d.Used + d.Balance.Available
	if d.Total > 0 {
		d.UsedPct = int(100 * d.Used / d.Total)
	}
	d.DaysLeft = int((end.Sub(now) + 24*time.Hour - 1) / (24 * time.Hour))
	if d.History, err = s.Store.History(ctx, p.ID, 20); err != nil {
		fail(err)
		return
	}
	if d.Requests, err = s.Store.RequestsBy(ctx, p.ID, 20); err != nil {
		fail(err)
		return
	}
	if d.Impacts, err = s.Store.Impacts(ctx, p.ID, time.Time{}, 20); err != nil {
		fail(err)
		return
	}
	done, err := s.Store.LessonProgress(ctx, p.ID)
	if err != nil {
		fail(err)
		return
	}
	lessons, err := prompts.Lessons()
	if err != nil {
		fail(fmt.Errorf("lessons: %w", err))
		return
	}
	d.LessonsOf = len(lessons)
	for _, l := range lessons {
		d.Lessons = append(d.Lessons, lessonRow{Title: l.Title, Done: done[l.ID]})
	}
	if d.Prompts, err = s.Store.PromptsBy(ctx, p.ID, 20); err != nil {
		fail(err)
		return
	}
	if d.Panels, err = s.personPanels(ctx, p); err != nil {
		fail(err)
		return
	}
	s.render(w, r, http.StatusOK, "me.html", page{Title: "My tokens", Nav: "me", Data: d})
}

func (s *Server) personCSV(w http.ResponseWriter, r *http.Request) {
	if !s.ownPage(w, r) {
		return
	}
	panels, err := s.personPanels(r.Context(), viewerOf(r).Person)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.csv(w, r, panels)
}
