package simulator

import (
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"
)

// A webhook sink for demos: POST /_hooks/{id} records what a notification channel sent
// (headers of interest and the JSON body); GET /_hooks/{id} lists it. It is not Qualtrics: it
// stands in for the customer's receiver so that `make demo` can show a notification arriving.

type hookHit struct {
	Time      time.Time       `json:"time"`
	ID        string          `json:"webhookId"`
	Timestamp string          `json:"webhookTimestamp"`
	Signature string          `json:"webhookSignature"`
	Body      json.RawMessage `json:"body"`
}

type hookSet struct {
	mu   sync.Mutex
	hits map[string][]hookHit
}

func (s *Simulator) hookRoutes(mux *http.ServeMux) {
	hs := &hookSet{hits: map[string][]hookHit{}}
	mux.HandleFunc("POST /_hooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil || !json.Valid(b) {
			writeError(w, http.StatusBadRequest, "the body must be JSON")
			return
		}
		h := hookHit{Time: s.cfg.Now().UTC(), ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
			Signature: r.Header.Get("webhook-signature"), Body: b}
		hs.mu.Lock()
		hs.hits[r.PathValue("id")] = append(hs.hits[r.PathValue("id")], h)
		hs.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /_hooks/{id}", func(w http.ResponseWriter, r *http.Request) {
		hs.mu.Lock()
		hits := append([]hookHit{}, hs.hits[r.PathValue("id")]...)
		hs.mu.Unlock()
		writeControl(w, http.StatusOK, map[string]any{"hits": hits})
	})
}
