package simulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

func (s *Simulator) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/events/", s.handleEvent)
	mux.HandleFunc("/runs/{id}", s.handleRuns)
	mux.HandleFunc("/API/v3/", s.handleAPI)

	mux.HandleFunc("GET /_control/workflows", s.controlListWorkflows)
	mux.HandleFunc("PUT /_control/workflows/{id}", s.controlPutWorkflow)
	mux.HandleFunc("DELETE /_control/workflows/{id}", s.controlDeleteWorkflow)
	mux.HandleFunc("PUT /_control/workflows/{id}/script", s.controlScript)
	mux.HandleFunc("PUT /_control/workflows/{id}/keyscript", s.controlKeyScript)
	mux.HandleFunc("PUT /_control/workflows/{id}/faults", s.controlFaults)
	mux.HandleFunc("POST /_control/workflows/{id}/reset", s.controlReset)
	mux.HandleFunc("POST /_control/reset", s.controlResetAll)
	mux.HandleFunc("GET /_control/stats", s.controlStats)
	s.brandRoutes(mux) // survey-watch brands (brand_control.go)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return mux
}

// handleRuns serves GET /runs/{id}[?since=RFC3339Nano]: the run history,
// oldest first, of runs strictly after since.
func (s *Simulator) handleRuns(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
		return
	}
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "since must be RFC 3339: "+err.Error())
			return
		}
		since = t
	}
	id := r.PathValue("id")
	if s.lookup(id) == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("workflow %q not found", id))
		return
	}
	runs := s.Runs(id)
	if !since.IsZero() {
		kept := runs[:0]
		for _, run := range runs {
			if run.Time.After(since) {
				kept = append(kept, run)
			}
		}
		runs = kept
	}
	if runs == nil {
		runs = []Run{}
	}
	writeControl(w, http.StatusOK, map[string]any{"runs": runs})
}

// writeControl writes a plain JSON body (the control API and /runs are the
// simulator's own, not Qualtrics', so they carry no envelope on success).
func writeControl(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encode: "+err.Error())
		return
	}
	writeJSON(w, status, b)
}

// decodeControl reads a small JSON control body into v.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "decode control body: "+err.Error())
		return false
	}
	return true
}

// controlError maps a control error to its status: the one place that does.
func controlError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrUnknownWorkflow) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeError(w, http.StatusBadRequest, err.Error())
}

// WorkflowView is a workflow with its current faults, as the control API
// lists it.
type WorkflowView struct {
	Workflow
	Latency      string `json:"latency"`
	Hang         bool   `json:"hang"`
	Unauthorized bool   `json:"unauthorized"`
	Hostile      string `json:"hostile"`    // the hostile mode, "" when off
	Scripted     int    `json:"scripted"`   // steps left in the workflow script
	KeyScripts   int    `json:"keyScripts"` // keys with steps left
	Runs         int64  `json:"runs"`       // runs since the last reset
}

func (s *Simulator) view(id string) (WorkflowView, error) {
	var v WorkflowView
	err := s.with(id, func(wf *workflow) {
		v = WorkflowView{
			Workflow: wf.cfg, Latency: wf.latency.String(), Hang: wf.hang,
			Unauthorized: wf.unauthorized, Hostile: wf.hostile.Mode, Scripted: len(wf.script),
			KeyScripts: len(wf.keyScripts), Runs: wf.stats.Runs,
		}
	})
	return v, err
}

func (s *Simulator) controlListWorkflows(w http.ResponseWriter, r *http.Request) {
	views := []WorkflowView{}
	for _, wf := range s.Workflows() {
		if v, err := s.view(wf.ID); err == nil {
			views = append(views, v)
		}
	}
	writeControl(w, http.StatusOK, map[string]any{"workflows": views})
}

func (s *Simulator) controlPutWorkflow(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID            string `json:"id"`
		Username      string `json:"username"`
		Token         string `json:"token"`
		RatePerMinute int    `json:"ratePerMinute"`
	}
	if !decodeControl(w, r, &body) {
		return
	}
	id := r.PathValue("id")
	if body.ID != "" && body.ID != id {
		writeError(w, http.StatusBadRequest, "body id does not match the path")
		return
	}
	if body.Token == "" {
		writeError(w, http.StatusBadRequest, "token is required")
		return
	}
	s.AddWorkflow(Workflow{ID: id, Username: body.Username, Token: body.Token, RatePerMinute: body.RatePerMinute})
	v, err := s.view(id)
	if err != nil {
		controlError(w, err)
		return
	}
	writeControl(w, http.StatusOK, v)
}

func (s *Simulator) controlDeleteWorkflow(w http.ResponseWriter, r *http.Request) {
	if !s.RemoveWorkflow(r.PathValue("id")) {
		controlError(w, fmt.Errorf("%w: %q", ErrUnknownWorkflow, r.PathValue("id")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// StepJSON is a Step on the wire: Delay is a Go duration string ("250ms").
type StepJSON struct {
	Status     int    `json:"status"`
	RetryAfter string `json:"retryAfter,omitempty"`
	Body       string `json:"body,omitempty"`
	Delay      string `json:"delay,omitempty"`
}

func parseSteps(in []StepJSON) ([]Step, error) {
	out := make([]Step, 0, len(in))
	for i, st := range in {
		var d time.Duration
		if st.Delay != "" {
			var err error
			if d, err = time.ParseDuration(st.Delay); err != nil {
				return nil, fmt.Errorf("step %d: delay: %w", i, err)
			}
		}
		if st.Status != 0 && (st.Status < 100 || st.Status > 599) {
			return nil, fmt.Errorf("step %d: status %d out of range", i, st.Status)
		}
		out = append(out, Step{Status: st.Status, RetryAfter: st.RetryAfter, Body: st.Body, Delay: d})
	}
	return out, nil
}

func (s *Simulator) controlScript(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Steps []StepJSON `json:"steps"`
	}
	if !decodeControl(w, r, &body) {
		return
	}
	steps, err := parseSteps(body.Steps)
	if err == nil {
		err = s.with(r.PathValue("id"), func(wf *workflow) { wf.script = steps })
	}
	s.controlDone(w, r, err)
}

func (s *Simulator) controlKeyScript(w http.ResponseWriter, r *http.Request) {
	var body struct {
		IdempotencyKey string     `json:"idempotencyKey"`
		Steps          []StepJSON `json:"steps"`
	}
	if !decodeControl(w, r, &body) {
		return
	}
	if body.IdempotencyKey == "" {
		writeError(w, http.StatusBadRequest, "idempotencyKey is required")
		return
	}
	steps, err := parseSteps(body.Steps)
	if err == nil && s.lookup(r.PathValue("id")) == nil {
		err = fmt.Errorf("%w: %q", ErrUnknownWorkflow, r.PathValue("id"))
	}
	if err == nil {
		s.SetKeyScript(r.PathValue("id"), body.IdempotencyKey, steps...)
	}
	s.controlDone(w, r, err)
}

func (s *Simulator) controlFaults(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Latency      *string      `json:"latency"`
		Hang         *bool        `json:"hang"`
		Unauthorized *bool        `json:"unauthorized"`
		Hostile      *HostileJSON `json:"hostile"`
	}
	if !decodeControl(w, r, &body) {
		return
	}
	var hostile Hostile
	if body.Hostile != nil {
		var err error
		if hostile, err = body.Hostile.parse(); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	var latency time.Duration
	if body.Latency != nil {
		var err error
		if latency, err = time.ParseDuration(*body.Latency); err != nil || latency < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("latency %q: want a non-negative Go duration", *body.Latency))
			return
		}
	}
	err := s.with(r.PathValue("id"), func(wf *workflow) {
		if body.Latency != nil {
			wf.latency = latency
		}
		if body.Unauthorized != nil {
			wf.unauthorized = *body.Unauthorized
		}
		if body.Hostile != nil {
			wf.hostile = hostile
		}
		if body.Hang != nil {
			if *body.Hang && !wf.hang {
				wf.hang = true
				wf.hangRelease = make(chan struct{})
			} else if !*body.Hang {
				wf.liftHang()
			}
		}
	})
	s.controlDone(w, r, err)
}

func (s *Simulator) controlReset(w http.ResponseWriter, r *http.Request) {
	err := s.with(r.PathValue("id"), func(wf *workflow) { s.resetLocked(wf) })
	s.controlDone(w, r, err)
}

func (s *Simulator) controlResetAll(w http.ResponseWriter, r *http.Request) {
	s.ResetAll()
	writeControl(w, http.StatusOK, map[string]any{"reset": true})
}

func (s *Simulator) controlStats(w http.ResponseWriter, r *http.Request) {
	writeControl(w, http.StatusOK, s.Stats())
}

// controlDone answers a per-workflow control call with the workflow's view.
func (s *Simulator) controlDone(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		controlError(w, err)
		return
	}
	v, err := s.view(r.PathValue("id"))
	if err != nil {
		controlError(w, err)
		return
	}
	writeControl(w, http.StatusOK, v)
}
