package web

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// csv writes the table of the chart named in the path, from panels.
func (s *Server) csv(w http.ResponseWriter, r *http.Request, panels []Panel) {
	id := r.PathValue("chart")
	for _, p := range panels {
		if p.Chart == nil || p.Chart.ID != id {
			continue
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="tokenpay-%s.csv"`, id))
		cw := csv.NewWriter(w)
		_ = cw.Write(p.Chart.Table.Head)
		for _, row := range p.Chart.Table.Rows {
			_ = cw.Write(csvSafe(row))
		}
		cw.Flush()
		return
	}
	s.problem(w, r, http.StatusNotFound, "No such table", "That download does not exist. Go back to the page and use the link beside the chart.")
}

// csvSafe keeps a spreadsheet from reading a cell (a team name) as a formula.
func csvSafe(row []string) []string {
	out := make([]string, len(row))
	for i, c := range row {
		if c != "" && (c[0] == '=' || c[0] == '+' || c[0] == '@' || (c[0] == '-' && !isNumber(c))) {
			c = "'" + c
		}
		out[i] = c
	}
	return out
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// pendingItem is a request waiting for the viewer, with what helps to decide it.
type pendingItem struct {
	Request   ledger.Request
	Requester ledger.Person
	Available int64 // credits the requester has left now
	UsedRatio string
	Outcomes  int // outcomes they logged this period
	Approved  int // earlier requests of theirs that were approved
	AdminStep bool
}

type impactItem struct {
	Impact ledger.Impact
	Person ledger.Person
}

type reportRow struct {
	Person   ledger.Person
	Segment  string
	Used     string
	Outcomes int
	Hoarding bool
}

type teamData struct {
	Pending  []pendingItem
	Validate []impactItem
	Reports  []reportRow
	Panels   []Panel
	Loc      *time.Location
}

// decidable lists the pending requests the viewer may decide now: as manager, delegate
// or admin, never their own (the handler checks again when they click).
func (s *Server) decidable(ctx context.Context, v viewer) ([]pendingItem, error) {
	all, err := s.Store.PendingRequests(ctx)
	if err != nil {
		return nil, err
	}
	start, end := s.Policy.PeriodStart(s.Now()), s.Policy.PeriodEnd(s.Now())
	var out []pendingItem
	for _, req := range all {
		if req.RequesterID == v.Person.ID {
			continue
		}
		managerStep := req.ApproverID != 0 && req.ManagerApproval == 0
		adminStep := req.ApproverID == 0 || (req.NeedsAdmin && req.AdminApproval == 0)
		mine := false
		if managerStep {
			if req.ApproverID == v.Person.ID {
				mine = true
			} else if ap, err := s.Store.PersonByID(ctx, req.ApproverID); err == nil && s.Policy.IsDelegate(ap.Email, v.Person.Email) {
				mine = true
			}
		}
		if !mine && !(v.Admin && adminStep) {
			continue
		}
		p, err := s.Store.PersonByID(ctx, req.RequesterID)
		if err != nil {
			return nil, err
		}
		b, err := s.Store.Balance(ctx, p.ID, start, end)
		if err != nil {
			return nil, err
		}
		ims, err := s.Store.Impacts(ctx, p.ID, start, 100)
		if err != nil {
			return nil, err
		}
		past, err := s.Store.RequestsBy(ctx, p.ID, 50)
		if err != nil {
			return nil, err
		}
		item := pendingItem{Request: req, Requester: p, Available: b.Available, Outcomes: len(ims), AdminStep: !mine}
		used := b.Spent - b.Overage
		if total := used + b.Available; total > 0 {
			item.UsedRatio = strconv.Itoa(int(100*used/total)) + "%"
		} else {
			item.UsedRatio = "–"
		}
		for _, pr := range past {
			if pr.Status == ledger.RequestApproved {
				item.Approved++
			}
		}
		out = append(out, item)
	}
	return out, nil
}

func (s *Server) teamPanels(ctx context.Context, v viewer, data *teamData) error {
	now := s.Now()
	reports, err := s.Store.Reports(ctx, v.Person.ID)
	if err != nil {
		return err
	}
	if len(reports) == 0 {
		return nil
	}
	ids := make([]int64, len(reports))
	group := map[int64]bool{}
	for i, p := range reports {
		ids[i] = p.ID
		group[p.ID] = true
	}
	people, err := s.Store.People(ctx)
	if err != nil {
		return err
	}
	figs, err := s.figures(ctx, now, people, ids)
	if err != nil {
		return err
	}
	csv := func(id string) string { return "/dashboard/team/csv/" + id }
	data.Panels = append(data.Panels, Panel{Heading: "Your team's credits", Chart: creditsOverTime("team-credits", "your reports", figs), CSV: csv("team-credits")})
	segs, snap, err := s.segmentsOverTime(ctx, "team-segments", now, group)
	if err != nil {
		return err
	}
	data.Panels = append(data.Panels, Panel{Heading: "How your team uses its allowance", Chart: segs, CSV: csv("team-segments")})
	out := &Chart{ID: "team-outcomes", Title: "Outcomes of your reports, per period", Kind: "line",
		Series: []Series{{Name: "Outcomes logged"}, {Name: "Validated"}, {Name: "Hours saved"}},
		Table:  Table{Head: []string{"Period", "Credits used", "Outcomes logged", "Validated", "Hours saved"}}}
	for _, f := range figs {
		out.Labels = append(out.Labels, f.Period.Name)
		out.Series[0].Values = append(out.Series[0].Values, float64(f.Logged))
		out.Series[1].Values = append(out.Series[1].Values, float64(f.Validated))
		out.Series[2].Values = append(out.Series[2].Values, float64(f.Minutes)/60)
		out.Table.Rows = append(out.Table.Rows, []string{f.Period.Name, itoa(f.Spent), strconv.Itoa(f.Logged), strconv.Itoa(f.Validated), hoursText(f.Minutes)})
	}
	out.Desc = "Outcomes your reports logged, those validated, and the hours they saved, per period; the table has the credits used beside."
	data.Panels = append(data.Panels, Panel{Heading: "Outcomes beside consumption", Chart: out, CSV: csv("team-outcomes")})
	reqs, lead, err := s.requestsChart(ctx, "team-requests", figs, group)
	if err != nil {
		return err
	}
	data.Panels = append(data.Panels, Panel{Heading: "Your team's requests", Lead: lead, Chart: reqs, CSV: csv("team-requests")})

	if snap != nil {
		for _, m := range snap.Members {
			if !group[m.Person.ID] {
				continue
			}
			data.Reports = append(data.Reports, reportRow{Person: m.Person, Segment: string(m.Segment),
				Used: strconv.Itoa(int(m.UsedRatio()*100+0.5)) + "%", Outcomes: m.Activity.ImpactsPeriod, Hoarding: m.Hoarding})
		}
	}
	ims, err := s.Store.ImpactsToValidate(ctx, ids, 10)
	if err != nil {
		return err
	}
	byID := map[int64]ledger.Person{}
	for _, p := range reports {
		byID[p.ID] = p
	}
	for _, im := range ims {
		data.Validate = append(data.Validate, impactItem{Impact: im, Person: byID[im.PersonID]})
	}
	return nil
}

// canSeeTeam: managers (with reports), delegates and admins, who decide requests here.
func (s *Server) canSeeTeam(v viewer) bool {
	if v.Admin || v.Manager {
		return true
	}
	for manager := range s.Policy.Unlock.Delegates {
		if s.Policy.IsDelegate(manager, v.Person.Email) {
			return true
		}
	}
	return false
}

func (s *Server) teamPage(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if !s.canSeeTeam(v) {
		s.forbidden(w, r, "The team page is for managers. Your own page is under My tokens.")
		return
	}
	data := teamData{Loc: s.Policy.Location()}
	var err error
	if data.Pending, err = s.decidable(r.Context(), v); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.teamPanels(r.Context(), v, &data); err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "team.html", page{Title: "Team", Nav: "team", Data: data})
}

func (s *Server) teamCSV(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	if !s.canSeeTeam(v) {
		s.forbidden(w, r, "The team's figures are for its manager.")
		return
	}
	var data teamData
	if err := s.teamPanels(r.Context(), v, &data); err != nil {
		s.fail(w, r, err)
		return
	}
	s.csv(w, r, data.Panels)
}

type resultData struct {
	Reply bot.Reply
	Back  string
}

// decide approves or denies a request through the conversation core: the rules,
// the audit and the second-click answer are the chat buttons'.
func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.problem(w, r, http.StatusNotFound, "No such request", "Go back to the team page and pick a request there.")
		return
	}
	var reply bot.Reply
	switch r.PathValue("decision") {
	case "approve":
		reply = s.Handler.Act(r.Context(), viewerOf(r).Person, bot.Action{Kind: bot.ActApprove, Value: strconv.FormatInt(id, 10)}, nil)
	case "deny":
		reply = s.Handler.Act(r.Context(), viewerOf(r).Person, bot.Action{Kind: bot.ActDeny, Value: strconv.FormatInt(id, 10)},
			map[string]string{"reason": r.PostFormValue("reason")})
	default:
		s.problem(w, r, http.StatusNotFound, "No such decision", "A request can be approved or denied.")
		return
	}
	s.render(w, r, http.StatusOK, "result.html", page{Title: "Decision", Nav: "team", Data: resultData{Reply: reply, Back: "/dashboard/team"}})
}

func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		s.problem(w, r, http.StatusNotFound, "No such outcome", "Go back to the team page and pick an outcome there.")
		return
	}
	reply := s.Handler.Act(r.Context(), viewerOf(r).Person, bot.Action{Kind: bot.ActValidate, Value: strconv.FormatInt(id, 10)}, nil)
	s.render(w, r, http.StatusOK, "result.html", page{Title: "Outcome", Nav: "team", Data: resultData{Reply: reply, Back: "/dashboard/team"}})
}
