package simulator

import "net/http"

// brandRoutes adds the HTTP controls of survey-watch brands (the Go methods of Brand do the
// same from tests):
//
//	PUT  /_control/brands/{id}                      {"token"}: create, seeded relative to now
//	POST /_control/brands/{id}/recipients           {"distributionId","email","firstName","lastName","status"}
//	PUT  /_control/brands/{id}/recipients/status    {"distributionId","email","status"}
//	PUT  /_control/brands/{id}/throttle             {"endpoint","n","retryAfter"}
//	PUT  /_control/brands/{id}/revoked              {"revoked"}
func (s *Simulator) brandRoutes(mux *http.ServeMux) {
	s.hookRoutes(mux) // hooks.go
	mux.HandleFunc("PUT /_control/brands/{id}", func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Token string }
		if !decodeControl(w, r, &body) {
			return
		}
		if body.Token == "" {
			writeError(w, http.StatusBadRequest, "token is required")
			return
		}
		b := s.AddBrand(r.PathValue("id"), body.Token)
		writeControl(w, http.StatusOK, map[string]any{"id": b.ID, "surveys": b.SurveyIDs()})
	})
	withBrand := func(f func(w http.ResponseWriter, r *http.Request, b *Brand)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b := s.Brand(r.PathValue("id"))
			if b == nil {
				writeError(w, http.StatusNotFound, "no such brand")
				return
			}
			f(w, r, b)
		}
	}
	mux.HandleFunc("POST /_control/brands/{id}/recipients", withBrand(func(w http.ResponseWriter, r *http.Request, b *Brand) {
		var body struct{ DistributionID, Email, FirstName, LastName, Status string }
		if !decodeControl(w, r, &body) {
			return
		}
		if body.Status == "" {
			body.Status = "Success"
		}
		id := b.AddRecipient(body.DistributionID, body.Email, body.FirstName, body.LastName, body.Status)
		if id == "" {
			writeError(w, http.StatusNotFound, "no such distribution")
			return
		}
		writeControl(w, http.StatusCreated, map[string]string{"contactId": id})
	}))
	mux.HandleFunc("PUT /_control/brands/{id}/recipients/status", withBrand(func(w http.ResponseWriter, r *http.Request, b *Brand) {
		var body struct{ DistributionID, Email, Status string }
		if !decodeControl(w, r, &body) {
			return
		}
		if !b.SetRecipientStatus(body.DistributionID, body.Email, body.Status) {
			writeError(w, http.StatusNotFound, "no such recipient")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("PUT /_control/brands/{id}/throttle", withBrand(func(w http.ResponseWriter, r *http.Request, b *Brand) {
		var body struct {
			Endpoint      string
			N, RetryAfter int
		}
		if !decodeControl(w, r, &body) {
			return
		}
		b.Throttle(body.Endpoint, body.N, body.RetryAfter)
		w.WriteHeader(http.StatusNoContent)
	}))
	mux.HandleFunc("PUT /_control/brands/{id}/revoked", withBrand(func(w http.ResponseWriter, r *http.Request, b *Brand) {
		var body struct{ Revoked bool }
		if !decodeControl(w, r, &body) {
			return
		}
		b.Revoke(body.Revoked)
		w.WriteHeader(http.StatusNoContent)
	}))
}
